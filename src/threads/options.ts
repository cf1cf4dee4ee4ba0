/**
 * The options of `createPool`, their defaults, and the options of one pool call.
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import type { ResourceLimits, Transferable } from 'node:worker_threads';
import type { Contract } from '../contract.js';
import { BusError } from '../errors.js';
import { checkDurationMs } from '../util/duration.js';

/** How a pool replaces a thread that crashed or exited. */
export interface RestartBackoffOptions {
  /**
   * The first replacement after a crash is at once; the second in a row waits this many ms,
   * doubled for each further one.
   * @default 100
   */
  readonly initialMs?: number;
  /** The longest wait before a replacement, in ms. @default 5_000 */
  readonly maxMs?: number;
  /** A thread that stayed up this many ms resets the count of crashes in a row. @default 10_000 */
  readonly resetAfterMs?: number;
}

/** Options of `createPool`. */
export interface PoolOptions<C extends Contract> {
  /** The contract; the threads' `connectThread(contract)` must use the same one. */
  readonly contract: C;
  /**
   * The module each thread runs (it calls `connectThread`): a file URL, a path, or a `data:`
   * URL, as `new Worker` takes it.
   */
  readonly file: string | URL;
  /** How many threads. @default os.availableParallelism() */
  readonly threads?: number;
  /**
   * At most this many calls wait for a thread (not yet sent to one); past it, calls reject with
   * `OVERLOADED`.
   * @default 10_000
   */
  readonly maxQueue?: number;
  /**
   * At most this many calls in flight on one thread; more wait in the pool's queue, for the
   * first thread that has room.
   * @default 16
   */
  readonly maxInFlightPerThread?: number;
  /**
   * After a call is aborted or times out, its handler has this many ms to return (it sees its
   * `signal` abort); past it, the thread is terminated and replaced.
   * @default 1_000
   */
  readonly abortGraceMs?: number;
  /** Passed to each `new Worker` as is (heap sizes in MB, stack size in MB). @default undefined */
  readonly resourceLimits?: ResourceLimits;
  /** Passed to each `new Worker` as `workerData` (structured clone). @default undefined */
  readonly workerData?: unknown;
  /** Passed to each `new Worker` as `execArgv`. @default the process's `execArgv` (Node's) */
  readonly execArgv?: readonly string[];
  /**
   * `close()` lets the calls in flight and queued finish for at most this many ms, then rejects
   * what is left with `CLOSED` and terminates the threads.
   * @default 10_000
   */
  readonly closeTimeoutMs?: number;
  /**
   * `createPool` rejects with `STARTUP_FAILED` if a thread has not connected within this many ms.
   * @default 30_000
   */
  readonly startTimeoutMs?: number;
  /** The default `timeoutMs` of calls, in ms. @default 30_000 */
  readonly callTimeoutMs?: number;
  /** Backoff of thread replacements. */
  readonly restartBackoff?: RestartBackoffOptions;
  /** The pool's name, in messages and in health reports. @default 'pool' */
  readonly name?: string;
}

/** Options of one pool call. */
export interface ThreadCallOptions {
  /**
   * Reject with `TIMEOUT` if no answer arrives within this many ms (waiting in the queue
   * included); the handler's signal is aborted.
   * @default the pool's `callTimeoutMs` (30_000)
   */
  readonly timeoutMs?: number;
  /** Aborting it rejects the call with `ABORTED` and aborts the handler's `signal`. */
  readonly signal?: AbortSignal;
  /**
   * ArrayBuffers and MessagePorts in the input to move to the thread instead of copying them:
   * after the call is sent, they are detached on this side.
   * @default []
   */
  readonly transfer?: readonly Transferable[];
}

/** @internal The options, defaulted and checked. */
export interface ResolvedPoolOptions {
  readonly threads: number;
  readonly maxQueue: number;
  readonly maxInFlightPerThread: number;
  readonly abortGraceMs: number;
  readonly closeTimeoutMs: number;
  readonly startTimeoutMs: number;
  readonly callTimeoutMs: number;
  readonly restartInitialMs: number;
  readonly restartMaxMs: number;
  readonly restartResetAfterMs: number;
  readonly name: string;
}

function count(value: unknown, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new BusError('INVALID_ARGUMENT', `createPool: ${what} must be an integer >= 1`);
  }
  return value;
}

function ms(value: unknown, what: string, fallback: number, zero = false): number {
  return value === undefined ? fallback : checkDurationMs(value, `createPool: ${what}`, { zero });
}

/**
 * @internal Checks and defaults `createPool`'s options.
 * @throws `BusError` `INVALID_ARGUMENT` for a missing contract or file, or a bad option.
 */
export function resolvePoolOptions(options: PoolOptions<Contract>): ResolvedPoolOptions {
  if (typeof options !== 'object' || options === null) {
    throw new BusError('INVALID_ARGUMENT', 'createPool: options must be an object');
  }
  if (typeof options.contract?.methods?.has !== 'function') {
    throw new BusError('INVALID_ARGUMENT', 'createPool: contract must come from defineContract');
  }
  if (typeof options.file !== 'string' && !(options.file instanceof URL)) {
    throw new BusError('INVALID_ARGUMENT', 'createPool: file must be a string or a URL');
  }
  const backoff = options.restartBackoff ?? {};
  const name = options.name ?? 'pool';
  if (typeof name !== 'string' || name.length === 0) {
    throw new BusError('INVALID_ARGUMENT', 'createPool: name must be a non-empty string');
  }
  return {
    threads: count(options.threads, 'threads', availableParallelism()),
    maxQueue: options.maxQueue === 0 ? 0 : count(options.maxQueue, 'maxQueue', 10_000),
    maxInFlightPerThread: count(options.maxInFlightPerThread, 'maxInFlightPerThread', 16),
    abortGraceMs: ms(options.abortGraceMs, 'abortGraceMs', 1_000, true),
    closeTimeoutMs: ms(options.closeTimeoutMs, 'closeTimeoutMs', 10_000, true),
    startTimeoutMs: ms(options.startTimeoutMs, 'startTimeoutMs', 30_000),
    callTimeoutMs: ms(options.callTimeoutMs, 'callTimeoutMs', 30_000),
    restartInitialMs: ms(backoff.initialMs, 'restartBackoff.initialMs', 100, true),
    restartMaxMs: ms(backoff.maxMs, 'restartBackoff.maxMs', 5_000, true),
    restartResetAfterMs: ms(backoff.resetAfterMs, 'restartBackoff.resetAfterMs', 10_000),
    name,
  };
}
