/**
 * The public shapes of the bus: targets, options, handler context, results.
 *
 * @module
 */
import type {
  Contract,
  HandlerInput,
  HandlerResult,
  HasInput,
  MethodInput,
  MethodName,
} from '../contract.js';
import type { BusError } from '../errors.js';

/**
 * A process's id on the wire: a worker id (Node's `cluster.worker.id`), or `HUB_ID` (0) for the
 * hub. Opaque: compare and pass it, do not compute with it (a node-qualified id may come later).
 * @category RPC and pub/sub
 */
export type PeerId = number;

/**
 * Where a call goes: `'primary'`; a worker id (Node's `cluster.worker.id`, a positive integer);
 * `{ slot }`, the worker currently serving that stable slot (0..N-1; a replacement inherits its
 * slot); or `'any'`, one connected worker that handles the method, chosen round-robin by the
 * primary (workers being drained only when no other one handles it).
 * @category RPC and pub/sub
 */
export type Target = 'primary' | 'any' | PeerId | SlotTarget | NodeTarget;

/**
 * A call target on another node of a mesh (`startCluster({ mesh })`): worker `worker` (its
 * cluster worker id on that node, `bus.self` there) of node `node` (`bus.node` there).
 * @category RPC and pub/sub
 */
export interface NodeTarget {
  /** The node's name. */
  readonly node: string;
  /** The worker's id on that node (a positive integer). */
  readonly worker: number;
}

/**
 * A call target by stable slot: the worker currently serving slot `slot` (0..N-1).
 * @category RPC and pub/sub
 */
export interface SlotTarget {
  /** The slot, an integer >= 0. */
  readonly slot: number;
}

/** Who sent a request or an event: `'primary'` or a worker id. @category RPC and pub/sub */
export type Origin = 'primary' | PeerId;

/** Options of `call` and `callAll`. @category RPC and pub/sub */
export interface CallOptions {
  /**
   * Reject with `TIMEOUT` if no answer arrives within this many ms; the remote handler's signal
   * is aborted. For `callAll`, the limit for each worker.
   * @default the bus's `callTimeoutMs` (30_000)
   */
  readonly timeoutMs?: number;
  /** Aborting it rejects the call with `ABORTED` and aborts the remote handler's `signal`. */
  readonly signal?: AbortSignal;
  /**
   * `callAll` only, with a mesh: `'mesh'` gathers from every worker of every node, `'node'` from
   * this node's workers only. Without a mesh, both are this node's workers.
   * @default 'mesh'
   */
  readonly scope?: 'mesh' | 'node';
}

/**
 * The arguments after the method name: the input (omitted for a method without one), then options.
 * @category RPC and pub/sub
 */
export type CallArgs<C extends Contract, M extends MethodName<C>> =
  HasInput<C, M> extends true
    ? [input: MethodInput<C, M>, options?: CallOptions]
    : [input?: undefined, options?: CallOptions];

/** What a handler gets besides its input. @category RPC and pub/sub */
export interface HandlerContext {
  /** The method being handled. */
  readonly method: string;
  /** Who called: `'primary'` or a worker id. */
  readonly caller: Origin;
  /**
   * Aborted when the caller aborts or times out, or when the caller's process goes away. Its
   * `reason` is a {@link BusError}.
   */
  readonly signal: AbortSignal;
}

/**
 * A handler of method `M`: sync or async; what it throws reaches the caller as `REMOTE`. For a
 * stream method (declared with `stream`), an async generator (or any function returning an
 * async iterable) of the stream schema's input type.
 * @category RPC and pub/sub
 */
export type Handler<C extends Contract, M extends MethodName<C>> = (
  input: HandlerInput<C, M>,
  context: HandlerContext,
) => HandlerResult<C, M>;

/** Options of `bus.stream` (see docs/patterns-and-streams.md). @category RPC and pub/sub */
export interface StreamOptions {
  /**
   * Reject the iteration with `TIMEOUT` if the next item (or the end) does not arrive within this
   * many ms of the consumer asking for it (items already received count as arrived); the remote
   * generator is stopped. It bounds each wait, not the whole stream.
   * @default the bus's `callTimeoutMs` (30_000)
   */
  readonly timeoutMs?: number;
  /** Aborting it rejects the iteration with `ABORTED` and stops the remote generator. */
  readonly signal?: AbortSignal;
  /**
   * The window in items: at most this many items are asked for and not yet consumed (in flight
   * or buffered here), so the producer runs only that far ahead. 1 to 65,536.
   * @default 64
   */
  readonly windowItems?: number;
  /**
   * The window in bytes (of JSON, as `maxPayloadBytes` counts): the producer stops sending once
   * this many bytes are in flight or buffered and not consumed (one item may overshoot it).
   * 1 to 64 MiB.
   * @default 1_048_576 (1 MiB)
   */
  readonly windowBytes?: number;
}

/**
 * The arguments of `bus.stream` after the method: the input (omitted if none), then options.
 * @category RPC and pub/sub
 */
export type StreamArgs<C extends Contract, M extends MethodName<C>> =
  HasInput<C, M> extends true
    ? [input: MethodInput<C, M>, options?: StreamOptions]
    : [input?: undefined, options?: StreamOptions];

/**
 * What a subscriber gets besides the payload. `T`: the topics its pattern matches.
 * @category RPC and pub/sub
 */
export interface EventContext<T extends string = string> {
  /** The concrete topic the event was published on (never a pattern). */
  readonly topic: T;
  /** Who published: `'primary'` or a worker id. */
  readonly source: Origin;
}

/**
 * One worker's outcome in a `callAll`: its result, or the BusError it failed with.
 * @category RPC and pub/sub
 */
export type CallAllResult<T> =
  | {
      /** The worker that answered. */
      readonly workerId: number;
      /** The node of that worker, with a mesh. */
      readonly node?: string;
      readonly status: 'fulfilled';
      /** Its result, validated against the method's output schema. */
      readonly value: T;
    }
  | {
      /** The worker that failed. */
      readonly workerId: number;
      /** The node of that worker, with a mesh. */
      readonly node?: string;
      readonly status: 'rejected';
      /** Why: `NO_HANDLER`, `REMOTE`, `TIMEOUT`, `TARGET_EXITED`, `BAD_OUTPUT`, ... */
      readonly error: BusError;
    };

/** The events every bus emits. @category RPC and pub/sub */
export interface BusEvents {
  /**
   * Something received could not be used and has no caller to reject: an event payload that
   * failed its schema (`BAD_PAYLOAD`), a subscriber that threw (`SUBSCRIBER_FAILED`), a
   * malformed frame (`PROTOCOL`). Without a listener, it is printed with `process.emitWarning`.
   */
  error: (error: BusError) => void;
  /** The bus closed. */
  close: () => void;
}

/**
 * A handler of a system method (a `$`-prefixed name, outside the user's contract):
 * the bus's own protocols (store, health, config) validate their own inputs. A {@link BusError}
 * it throws reaches the caller with its code unchanged; anything else becomes `REMOTE`.
 */
export type SystemHandler = (input: unknown, context: HandlerContext) => unknown;

/** A subscriber of a system topic (a `$`-prefixed name), called in arrival order. */
export type SystemSubscriber = (payload: unknown, source: Origin) => void;
