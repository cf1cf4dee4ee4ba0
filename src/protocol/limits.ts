/**
 * The bounds of a peer ({@link FlowLimits}: coalescing, the outbound queue, what is received),
 * and the receive-side checks of a frame against them: a frame over the limits is refused with
 * an error that says who sent what.
 *
 * @module
 */
import { BusError, type BusErrorCode } from '../errors.js';
import { checkEncoded, checkValue, DEFAULT_MAX_DEPTH, type PayloadLimits } from './codec.js';
import type { GatherItem, StreamFrame } from './envelope.js';

/** Bounds of coalescing, of the outbound queue, and of what is received. */
export interface FlowLimits {
  /** At most this many frames in one message. */
  readonly maxFrames: number;
  /**
   * At most about this many bytes of payload in one message; a frame larger than this is sent
   * on its own. Large messages make the two processes take turns instead of working in parallel.
   */
  readonly maxBytes: number;
  /**
   * At most this many messages handed to the channel and not yet written out; past it, frames
   * wait in the queue (the peer is not reading fast enough).
   */
  readonly maxUnwritten: number;
  /**
   * At most about this many bytes waiting in the queue; past it, new requests and events are
   * refused with `OVERLOADED` (answers and cancels still queue: they settle what is in flight).
   */
  readonly maxQueueBytes: number;
  /**
   * Received payloads (inputs, results, events, errors) over this many bytes of JSON, or nested
   * deeper than `maxDepth`, are refused where they are received: the request is answered with
   * the error, the pending call rejects with it, the event is dropped; each is reported.
   */
  readonly maxPayloadBytes: number;
  /** Received payloads nested deeper than this many levels are refused (see `maxPayloadBytes`). */
  readonly maxDepth: number;
}

/**
 * maxFrames measured with bench/probe.ts on the 2-core machine (64 B, 256 in flight): 16 frames
 * 1.14x raw, 32 1.22x, 64 1.92x, 128 1.77x, 256 1.54x: smaller batches let both processes work
 * at once.
 */
export const DEFAULT_FLOW_LIMITS: FlowLimits = {
  maxFrames: 64,
  maxBytes: 32 * 1024,
  maxUnwritten: 16,
  maxQueueBytes: 32 * 1024 * 1024,
  maxPayloadBytes: 8 * 1024 * 1024,
  maxDepth: DEFAULT_MAX_DEPTH,
};

/**
 * The error a frame over this side's limits is refused with, saying who sent what.
 *
 * @param what - what was refused (`request 'add'`, `an answer`).
 * @param from - who sent it, for messages (`worker 3`, `the primary`).
 * @param cause - the error of the check ({@link checkEncoded}, {@link checkValue}).
 */
export function refusal(what: string, from: string, cause: BusError): BusError {
  return new BusError(cause.code, `${what} from ${from} was refused on receipt: ${cause.message}`, {
    ...(cause.data === undefined ? {} : { data: cause.data }),
  });
}

/** A value's check (an error answer's, a control frame's): its error, or undefined if within. */
export function errorOverLimits(e: unknown, limits: PayloadLimits): BusError | undefined {
  const size = checkValue(e, limits);
  return typeof size === 'number' ? undefined : size;
}

/**
 * Checks each item of a gather answer; an item over the limits becomes that worker's error.
 * Never refuses the whole list (one worker's answer does not fail the others).
 *
 * @param from - the peer the answer came from; `handlers.invalid` is told of each refused item.
 */
export function checkGather<P extends { readonly name: string }>(
  items: GatherItem[],
  limits: PayloadLimits,
  from: P,
  handlers: { invalid(peer: P, reason: string, code?: BusErrorCode): void },
): undefined {
  for (const item of items) {
    const refused =
      item.e === undefined ? checkEncoded(item, limits) : errorOverLimits(item.e, limits);
    if (refused === undefined) continue;
    const error = refusal(`worker ${item.w}'s answer`, from.name, refused);
    delete item.p;
    delete item.q;
    item.e = error.toJSON();
    handlers.invalid(from, error.message, error.code);
  }
  return undefined;
}

/**
 * Checks a stream's frame: an open's input and an item's payload against the limits, the rest as
 * a small value. Returns the refusal (saying who sent what), or undefined if within.
 */
export function checkStreamFrame(
  frame: StreamFrame,
  limits: PayloadLimits,
  from: string,
): BusError | undefined {
  const refused =
    frame.k === 'so' || frame.k === 'si'
      ? checkEncoded(frame, limits)
      : errorOverLimits(frame, limits);
  return refused === undefined ? undefined : refusal(`a '${frame.k}' frame`, from, refused);
}
