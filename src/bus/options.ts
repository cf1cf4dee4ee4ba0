/**
 * The options every bus takes, their defaults, and resolving them once, when the bus is made.
 *
 * @module
 */
import { DEFAULT_MAX_DEPTH, MAX_MAX_DEPTH } from '../protocol/codec.js';
import { DEFAULT_FLOW_LIMITS, type FlowLimits } from '../protocol/peer.js';
import { checkCount } from '../util/count.js';
import { checkDurationMs } from '../util/duration.js';

/** Default of `callTimeoutMs`, in ms. @category Buses */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/** Options every bus takes. @category Buses */
export interface BusOptions {
  /**
   * Default `timeoutMs` of every call from this process, in ms.
   * @default 30_000
   */
  readonly callTimeoutMs?: number;
  /**
   * The largest input, result or event payload this process sends or accepts, in bytes of JSON
   * text (approximately: string lengths as the channel writes them). Larger ones are refused by
   * the sender, before they reach the channel, with `PAYLOAD_TOO_LARGE`; one that reaches this
   * process anyway (a sender that did not check) is refused where it is received: a request is
   * answered with `PAYLOAD_TOO_LARGE`, an answer rejects its call with it, an event is dropped,
   * and each is reported on the `error` event.
   * @default 8_388_608 (8 MiB)
   */
  readonly maxPayloadBytes?: number;
  /**
   * The most bytes (approximately) that may wait to be sent to one peer while it does not keep
   * up (Node's IPC channel reports each message written; frames wait while too many are not).
   * Past it, new calls reject and publishes throw with `OVERLOADED`, instead of memory growing
   * without limit; answers to calls already in flight still queue.
   * @default 33_554_432 (32 MiB)
   */
  readonly maxQueueBytes?: number;
  /**
   * How many levels of arrays and objects a payload may nest (as its JSON has them). A deeper
   * input, result or event is refused by its sender with `PAYLOAD_TOO_DEEP`; one that reaches
   * this process anyway (a sender that did not check) is refused where it is received, like one
   * over `maxPayloadBytes`: a request is answered with the error, an answer rejects its call, an
   * event is dropped, and each is reported on the `error` event. At most 1_000.
   * @default 128
   */
  readonly maxDepth?: number;
  /**
   * Capture the stack when a call is issued, so that its rejection names the issuing line even
   * when the caller does not `await` it (`.then`/`.catch` chains). Off by default: it costs about
   * 2 µs per call (measured: about a fifth of the primary's CPU in the pipelined 64 B benchmark).
   * When off, a rejection's stack still names the caller's line through V8's async stack traces
   * whenever the caller awaits the call, at no cost.
   * @default false
   */
  readonly callSiteStacks?: boolean;
  /**
   * Primary only: let a worker whose contract differs from the primary's connect anyway (a
   * rolling deploy that changes the contract), reporting the difference as a `CONTRACT_MISMATCH`
   * `error` event instead of refusing the worker.
   * @default false
   */
  readonly allowContractMismatch?: boolean;
}

/** Default of `maxQueueBytes`: 32 MiB. */
export const DEFAULT_MAX_QUEUE_BYTES = 32 * 1024 * 1024;

/** Default of `maxPayloadBytes`: 8 MiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

/** Checked, defaulted call options. */
export interface ResolvedCallOptions {
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  /** `callAll` with a mesh: every node's workers, or this node's. */
  readonly scope?: 'mesh' | 'node';
}

/** The largest and deepest payload a process sends or accepts. */
export interface PayloadLimits {
  /** In bytes of JSON text. */
  readonly maxPayloadBytes: number;
  /** In levels of arrays and objects. */
  readonly maxDepth: number;
}

/** {@link BusOptions}, checked and defaulted, as the bus and its parts read them. */
export interface ResolvedBusOptions extends PayloadLimits {
  /** Default `timeoutMs` of calls, in ms. */
  readonly callTimeoutMs: number;
  /** Coalescing and queue bounds of every peer of the bus. */
  readonly flowLimits: FlowLimits;
  /** Capture stacks when calls are issued. */
  readonly callSiteStacks: boolean;
}

/**
 * Checks and defaults `options`, in the order a bus always has: `maxPayloadBytes`,
 * `maxQueueBytes`, `maxDepth`, `callTimeoutMs`.
 * @throws a `BusError` `INVALID_ARGUMENT` for a value out of its range.
 */
export function resolveBusOptions(options: BusOptions): ResolvedBusOptions {
  const maxPayloadBytes = checkCount(
    options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    'maxPayloadBytes',
  );
  const maxQueueBytes = checkCount(
    options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES,
    'maxQueueBytes',
  );
  const maxDepth = checkCount(options.maxDepth ?? DEFAULT_MAX_DEPTH, 'maxDepth', 1, MAX_MAX_DEPTH);
  return {
    maxPayloadBytes,
    maxDepth,
    flowLimits: { ...DEFAULT_FLOW_LIMITS, maxQueueBytes, maxPayloadBytes, maxDepth },
    callSiteStacks: options.callSiteStacks === true,
    callTimeoutMs: checkDurationMs(
      options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      'callTimeoutMs',
    ),
  };
}
