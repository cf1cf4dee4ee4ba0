/**
 * `createPool` and the {@link Pool}: typed calls to a set of worker threads, over the core's
 * {@link Peer} (pending calls, timeouts, cancellation, the error wire form) on a structured-clone
 * link. Scheduling is the pool's: `'any'` goes to a ready thread with the fewest calls in flight,
 * at most `maxInFlightPerThread` each; the rest wait in a queue bounded by `maxQueue`.
 *
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import { atCaller } from '../bus/stacks.js';
import type {
  Contract,
  EventInput,
  HasInput,
  MethodInput,
  MethodName,
  MethodOutput,
  TopicName,
} from '../contract.js';
import { BusError, summarizeIssues, toBusError, toIssues } from '../errors.js';
import { Kind, type ResponseFrame } from '../protocol/envelope.js';
import { emitOrWarn } from '../util/warn.js';
import { Dispatcher, type ThreadTarget } from './dispatch.js';
import { Lifecycle } from './lifecycle.js';
import type { PoolOptions, ResolvedPoolOptions, ThreadCallOptions } from './options.js';
import { resolvePoolOptions } from './options.js';
import { describeCall } from './queue.js';
import { type PoolStats, registerPool } from './registry.js';
import { ThreadSlots } from './slots.js';

export type { ThreadTarget } from './dispatch.js';

/** The arguments after the method name: the input (omitted for a method without one), then options. */
export type ThreadCallArgs<C extends Contract, M extends MethodName<C>> =
  HasInput<C, M> extends true
    ? [input: MethodInput<C, M>, options?: ThreadCallOptions]
    : [input?: undefined, options?: ThreadCallOptions];

/** One thread's outcome in a `callAll`. */
export type ThreadCallResult<T> =
  | { readonly thread: number; readonly status: 'fulfilled'; readonly value: T }
  | { readonly thread: number; readonly status: 'rejected'; readonly error: BusError };

/** The events of a {@link Pool}. */
export interface PoolEvents {
  /**
   * What has nobody to reject: a thread that crashed, exited or ran out of memory (`TARGET_EXITED`,
   * `cause` what it threw; it is replaced), a malformed frame (`PROTOCOL`). Without a listener,
   * it is printed with `process.emitWarning`.
   */
  error: (error: BusError) => void;
}

/** A pool of worker threads serving one contract. Made by {@link createPool}. */
export class Pool<C extends Contract> extends EventEmitter<PoolEvents> {
  private readonly options: ResolvedPoolOptions;
  private readonly slots: ThreadSlots;
  /** @internal */
  readonly lifecycle: Lifecycle;
  private readonly calls: Dispatcher;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  private unregister: () => void = () => {};
  private resolveClosed!: () => void;
  /** Resolves once the pool has closed. */
  readonly closed: Promise<void> = new Promise((r) => {
    this.resolveClosed = r;
  });

  /** @internal Use {@link createPool}. */
  constructor(
    readonly contract: C,
    options: PoolOptions<C>,
  ) {
    super();
    this.options = resolvePoolOptions(options);
    this.slots = new ThreadSlots(
      {
        file: options.file,
        workerData: options.workerData,
        resourceLimits: options.resourceLimits,
        execArgv: options.execArgv,
      },
      (handle, exit) => this.lifecycle.exited(handle, exit),
      (handle, message, error) => this.calls.refused(handle.index, message, error),
    );
    this.lifecycle = new Lifecycle(contract, this.options, this.slots, {
      pump: (place) => this.calls.pump(place),
      crashed: (error) => emitOrWarn(this, error),
      report: (error) => emitOrWarn(this, error),
      settled: () => this.checkDrained(),
    });
    this.calls = new Dispatcher(
      contract,
      this.options,
      this.lifecycle,
      () => this.closing,
      () => this.checkDrained(),
    );
  }

  /** @internal Threads started and not yet exited (tests check that close leaves none). */
  get runningThreads(): number {
    return this.slots.size;
  }

  /** The number of threads (`createPool({ threads })`). */
  get size(): number {
    return this.options.threads;
  }

  /** @internal Starts the threads; resolves once all are ready. */
  async open(): Promise<void> {
    const timer = setTimeout(() => {
      const late = this.lifecycle.places.filter((p) => !p.ready).map((p) => p.index);
      this.lifecycle.failStart(
        new BusError(
          'STARTUP_FAILED',
          `createPool: thread ${late.join(', ')} did not connect within startTimeoutMs (${this.options.startTimeoutMs} ms); does the file call connectThread?`,
          { data: { threads: late } },
        ),
      );
    }, this.options.startTimeoutMs);
    try {
      this.lifecycle.spawnAll();
      await this.lifecycle.start;
    } catch (error) {
      await this.shutdown();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    this.unregister = registerPool(this);
  }

  /**
   * Calls `method` on a thread and resolves with its result, validated here against the
   * method's output schema (its input is validated in the thread).
   *
   * @param target - `'any'` (a ready thread with the fewest calls in flight) or a thread index.
   * @param args - the input (omit it for a method without one), then
   *   `{ timeoutMs?, signal?, transfer? }`.
   * @throws never synchronously; rejects with a `BusError`: `BAD_INPUT` (with `issues`),
   *   `BAD_OUTPUT`, `REMOTE` (the handler threw: `cause` has its name, message, stack, code,
   *   issues), `NO_HANDLER`, `TIMEOUT`, `ABORTED`, `OVERLOADED` (`maxQueue` calls wait),
   *   `TARGET_EXITED` (the thread crashed, exited or ran out of memory), `CLOSED`,
   *   `INVALID_ARGUMENT` (unknown method, bad target or option, an input structured clone
   *   cannot copy).
   */
  async call<M extends MethodName<C>>(
    target: ThreadTarget,
    method: M,
    ...args: ThreadCallArgs<C, M>
  ): Promise<MethodOutput<C, M>> {
    try {
      const frame = await this.calls.issue(target, method, args[0], args[1]);
      return this.decode(target, method, frame) as MethodOutput<C, M>;
    } catch (error) {
      throw atCaller(toBusError(error, 'INVALID_ARGUMENT'), undefined);
    }
  }

  /**
   * Calls `method` on every thread (each index, a thread being replaced included: the call
   * waits for its replacement) and resolves with one settled result per thread, in index order.
   * Never rejects for one thread's failure. `transfer` is refused (a buffer moves to one thread).
   *
   * @throws never synchronously; rejects with `CLOSED` or `INVALID_ARGUMENT` only.
   */
  async callAll<M extends MethodName<C>>(
    method: M,
    ...args: ThreadCallArgs<C, M>
  ): Promise<ThreadCallResult<MethodOutput<C, M>>[]> {
    try {
      this.calls.check(method, args[1]);
      if (args[1]?.transfer !== undefined && args[1].transfer.length > 0) {
        throw new BusError(
          'INVALID_ARGUMENT',
          `callAll '${method}': transfer moves a buffer to one thread; use call`,
        );
      }
    } catch (error) {
      throw atCaller(toBusError(error, 'INVALID_ARGUMENT'), undefined);
    }
    const all = this.lifecycle.places.map((p) =>
      this.calls
        .issue(p.index, method, args[0], args[1])
        .then((frame) => this.decode(p.index, method, frame)),
    );
    const settled = await Promise.allSettled(all);
    return settled.map((s, thread) =>
      s.status === 'fulfilled'
        ? { thread, status: 'fulfilled', value: s.value as MethodOutput<C, M> }
        : { thread, status: 'rejected', error: toBusError(s.reason, 'INVALID_ARGUMENT') },
    );
  }

  /**
   * Publishes `payload` on `topic` to every thread that is ready now (a thread being replaced
   * misses it). Validated here first, and again by every thread.
   *
   * @throws `BusError` (synchronously) `INVALID_ARGUMENT` for a topic not in the contract
   *   or a payload structured clone cannot copy, `BAD_PAYLOAD` (with `issues`), `CLOSED`.
   */
  publish<T extends TopicName<C>>(topic: T, payload: EventInput<C, T>): void {
    if (this.closing) throw new BusError('CLOSED', `publish '${topic}': the pool is closed`);
    const schema = this.contract.events.get(topic);
    if (schema === undefined) {
      throw new BusError('INVALID_ARGUMENT', `publish: '${topic}' is not a topic of the contract`);
    }
    const parsed = schema.safeParse(payload);
    if (!parsed.success) {
      throw new BusError(
        'BAD_PAYLOAD',
        `publish '${topic}': the payload fails the topic's schema: ${summarizeIssues(parsed.error.issues, 'payload')}`,
        { issues: toIssues(parsed.error.issues) },
      );
    }
    this.calls.publishRefused = undefined;
    for (const place of this.lifecycle.places) {
      if (!place.ready || place.peer === undefined) continue;
      place.peer.send({ k: Kind.event, m: topic, s: 0, p: payload });
      if (this.calls.publishRefused !== undefined) {
        const why = String(this.calls.publishRefused);
        this.calls.publishRefused = undefined;
        throw new BusError(
          'INVALID_ARGUMENT',
          `publish '${topic}': the payload cannot be copied to a thread (${why})`,
        );
      }
    }
  }

  /** The pool's figures now: threads, busy, queued, callsServed, and per thread. */
  stats(): PoolStats {
    const places = this.lifecycle.places;
    return {
      name: this.options.name,
      threads: places.filter((p) => p.ready).length,
      busy: places.filter((p) => p.load > 0).length,
      queued: this.calls.queue.size,
      inFlight: places.reduce((n, p) => n + p.load, 0),
      callsServed: this.calls.served,
      restarts: this.lifecycle.restarts,
      perThread: places.map((p) => p.stats()),
    };
  }

  /**
   * Closes the pool: new calls and publishes reject with `CLOSED`; the calls in flight and queued
   * may finish for `closeTimeoutMs`; then what is left rejects with `CLOSED` and every thread is
   * terminated. Resolves once they have all exited. Idempotent; never rejects.
   */
  close(): Promise<void> {
    this.closePromise ??= this.closeNow();
    return this.closePromise;
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async closeNow(): Promise<void> {
    this.closing = true;
    this.unregister();
    if (!this.calls.idle()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.closeTimeoutMs);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.drained = undefined;
    }
    await this.shutdown();
    this.resolveClosed();
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.lifecycle.stop();
    const closedBy = `the pool '${this.options.name}' closed before the call was answered`;
    this.calls.queue.rejectAll(
      (w) => new BusError('CLOSED', `${describeCall(w)} failed: ${closedBy}`),
    );
    for (const place of this.lifecycle.places) {
      place.clearLingering();
      place.ready = false;
      place.peer?.close('CLOSED', closedBy);
    }
    this.slots.close();
    await this.slots.terminateAll();
  }

  private checkDrained(): void {
    if (this.drained !== undefined && this.calls.idle()) this.drained();
  }

  private decode(target: ThreadTarget, method: string, frame: ResponseFrame): unknown {
    const schema = this.contract.methods.get(method)?.output;
    if (schema === undefined) return undefined;
    const parsed = schema.safeParse(frame.p);
    if (parsed.success) return parsed.data;
    throw new BusError(
      'BAD_OUTPUT',
      `${describeCall({ method, target })}: the handler's result fails the output schema: ${summarizeIssues(parsed.error.issues, 'output')}`,
      { issues: toIssues(parsed.error.issues) },
    );
  }
}

/**
 * Starts a pool of `threads` worker threads running `file` (which calls `connectThread` with the
 * same contract) and resolves once every thread is connected. Works in any process: a cluster
 * worker, the primary, a plain script. The pool keeps the process alive until `close()`. In a
 * cluster worker, the pool shows in the worker's health report and its drain closes it.
 *
 * @throws never synchronously; rejects with a `BusError`: `INVALID_ARGUMENT` for bad
 *   options; `STARTUP_FAILED` when a thread fails before it connects twice in a row (`cause`
 *   is what it threw; its message is in the error's) or does not connect within
 *   `startTimeoutMs`; `CONTRACT_MISMATCH` when a thread connects with another contract.
 */
export async function createPool<C extends Contract>(options: PoolOptions<C>): Promise<Pool<C>> {
  const pool = new Pool(options?.contract, options);
  await pool.open();
  return pool;
}
