/**
 * Streamed responses on top of the base bus: `bus.stream(target, method, input, options)` (the
 * consumer, `stream.ts`) and serving the streams other processes open (`stream-serve.ts`). Where
 * a stream goes is the subclasses' routing ({@link StreamingBus.openStream}), as for calls.
 *
 * @module
 */
import type { Contract, StreamItem, StreamMethodName } from '../contract.js';
import type { Origin, StreamArgs, StreamOptions, Target } from '../core/types.js';
import { BusError, summarizeIssues, toIssues } from '../errors.js';
import { decode, encode } from '../protocol/codec.js';
import type { Encoded, StreamOpenFrame } from '../protocol/envelope.js';
import { checkDurationMs } from '../util/duration.js';
import { BaseBus } from './base.js';
import { checkTarget, describeTarget } from './names.js';
import { callSite } from './stacks.js';
import { ConsumerStream, type StreamHandle, type StreamPlan } from './stream.js';
import { serveStream } from './stream-serve.js';
import {
  type ConsumerSink,
  DEFAULT_WINDOW_BYTES,
  DEFAULT_WINDOW_ITEMS,
  MAX_WINDOW_BYTES,
  MAX_WINDOW_ITEMS,
  type StreamEndpoint,
} from './streams.js';

/** A bus that streams: the base bus, and `stream`. */
export abstract class StreamingBus<C extends Contract> extends BaseBus<C> {
  /**
   * Opens stream `method` on `target` with `sink` as its consumer and its first credit.
   * @throws a `BusError` when it cannot be sent (`NO_TARGET`, `NO_HANDLER`, `CLOSED`, ...).
   */
  protected abstract openStream(
    target: Target,
    method: string,
    payload: Encoded,
    sink: ConsumerSink,
    items: number,
    bytes: number,
  ): StreamHandle;

  /**
   * Calls stream method `method` (declared with `stream` in the contract) on `target`, and
   * returns an async iterator of its items, each validated against the stream schema on
   * receipt. Nothing is sent until the first `next()` (the first turn of `for await`). The
   * producer runs only while this consumer has asked for items: at most `windowItems` items and
   * about `windowBytes` bytes are in flight or buffered here, unconsumed.
   *
   * @param target - `'primary'`, a worker id, `{ slot }`, or `'any'`.
   * @param args - the input (omit it for a method without an input schema), then
   *   `{ timeoutMs?, signal?, windowItems?, windowBytes? }` ({@link StreamOptions}).
   * @returns an async iterable iterator; `break` (or `return()`) ends it quietly and stops the
   *   remote generator (its `finally` runs, its `ctx.signal` aborts).
   * @throws never synchronously; the iteration rejects with a {@link BusError}: `ABORTED` (the
   *   signal fired), `TIMEOUT` (no item within `timeoutMs` of asking), `BAD_OUTPUT` (an item
   *   fails the stream schema), `REMOTE` (the generator threw, after the items it yielded before),
   *   `TARGET_EXITED` (the producer's process went), `BAD_INPUT`, `NO_HANDLER`, `NO_TARGET`,
   *   `CLOSED`, `INVALID_ARGUMENT` (misuse, on the first `next()`), `PAYLOAD_TOO_LARGE`,
   *   `LIMIT_EXCEEDED` (10,000 streams open over the link), `OVERLOADED`, `PROTOCOL`. In every
   *   case the remote generator is stopped.
   */
  stream<M extends StreamMethodName<C>>(
    target: Target,
    method: M,
    ...args: StreamArgs<C, M>
  ): AsyncIterableIterator<StreamItem<C, M>> {
    const site = this.callSiteStacks ? callSite(this.stream) : undefined;
    return new ConsumerStream<StreamItem<C, M>>(
      () => this.planStream(target, method, args[0], args[1]),
      site,
    );
  }

  /** Checks a stream's arguments (on its first `next()`) and plans it. */
  private planStream(
    target: Target,
    method: string,
    input: unknown,
    options: StreamOptions | undefined,
  ): StreamPlan {
    if (this.isClosed) throw new BusError('CLOSED', `stream '${method}': the bus is closed`);
    const schema = this.contract.methods.get(method)?.stream;
    if (schema === undefined) {
      throw new BusError(
        'INVALID_ARGUMENT',
        this.contract.methods.has(method)
          ? `stream: '${method}' is not a stream method of the contract (it declares no 'stream'): use call`
          : `stream: '${method}' is not a method of the contract`,
      );
    }
    checkTarget(target);
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new BusError('INVALID_ARGUMENT', 'stream: options must be an object');
    }
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new BusError('INVALID_ARGUMENT', 'stream: options.signal must be an AbortSignal');
    }
    const timeoutMs =
      options?.timeoutMs === undefined
        ? this.callTimeoutMs
        : checkDurationMs(options.timeoutMs, 'timeoutMs');
    const windowItems = windowOption(
      options?.windowItems,
      'windowItems',
      DEFAULT_WINDOW_ITEMS,
      MAX_WINDOW_ITEMS,
    );
    const windowBytes = windowOption(
      options?.windowBytes,
      'windowBytes',
      DEFAULT_WINDOW_BYTES,
      MAX_WINDOW_BYTES,
    );
    const payload = encode(input, this.flowLimits.maxPayloadBytes, this.flowLimits.maxDepth);
    const label = `stream '${method}' from ${describeTarget(target)}`;
    return {
      label,
      timeoutMs,
      signal,
      windowItems,
      windowBytes,
      open: (sink, items, bytes) => this.openStream(target, method, payload, sink, items, bytes),
      decode: (frame) => {
        const parsed = schema.safeParse(decode(frame));
        if (parsed.success) return parsed.data;
        throw new BusError(
          'BAD_OUTPUT',
          `${label}: an item fails the stream schema: ${summarizeIssues(parsed.error.issues, 'item')}`,
          { issues: toIssues(parsed.error.issues) },
        );
      },
    };
  }

  /** Serves stream `frame`, opened on `endpoint` by `caller`, with this process's handler. */
  protected serveStream(endpoint: StreamEndpoint, frame: StreamOpenFrame, caller: Origin): void {
    serveStream(
      {
        contract: this.contract,
        handlers: this.handlers,
        self: this.self,
        limits: this.flowLimits,
        report: (error) => this.report(error),
      },
      endpoint,
      frame,
      caller,
    );
  }
}

/** A window option: an integer from 1 to `max`, or the default. */
function windowOption(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `stream: ${name} must be an integer from 1 to ${max}, got ${String(value)}`,
    );
  }
  return value;
}
