/**
 * The consuming side of a stream (`bus.stream`): an async iterator that opens the stream on its
 * first `next()`, buffers what arrives (never more than its window: it grants credit only for
 * what its loop consumed), validates each item as the loop takes it, and settles on every path:
 * the end, a remote error after the items sent before it, `break` (quietly), abort (`ABORTED`),
 * the wait for an item past `timeoutMs` (`TIMEOUT`), the link going (`TARGET_EXITED`).
 *
 * @module
 */
import { BusError } from '../errors.js';
import type { StreamItemFrame } from '../protocol/envelope.js';
import { atCaller } from './stacks.js';
import type { ConsumerSink } from './streams.js';

/** What a consumer asks of the link it opened its stream on. */
export interface StreamHandle {
  /** Grants the producer `items` more items and `bytes` more bytes. */
  credit(items: number, bytes: number): void;
  /** Stops the producer (the consumer is done with the stream). */
  cancel(): void;
}

/** How a consumer runs, once its checks passed (see {@link ConsumerStream}). */
export interface StreamPlan {
  /** `stream 'export' to worker 2`, for messages. */
  readonly label: string;
  /** The longest wait for each item, in ms. */
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly windowItems: number;
  readonly windowBytes: number;
  /** Opens the stream with its first credit; throws if it cannot (no target, closed, ...). */
  open(sink: ConsumerSink, items: number, bytes: number): StreamHandle;
  /** Decodes and validates one item (throws `BAD_OUTPUT`). */
  decode(frame: StreamItemFrame): unknown;
}

/** Checks the stream's arguments on the first `next()` (throws its misuse errors), and plans it. */
export type StreamPlanner = () => StreamPlan;

interface Waiter<T> {
  resolve(result: IteratorResult<T>): void;
  reject(error: BusError): void;
}

const DONE: IteratorResult<never> = Object.freeze({ done: true, value: undefined });

/** One stream, as its consumer iterates it. */
export class ConsumerStream<T> implements AsyncIterableIterator<T>, ConsumerSink {
  private state: 'idle' | 'open' | 'ended' | 'done' = 'idle';
  private handle: StreamHandle | undefined;
  private readonly buffer: Array<{ frame: StreamItemFrame; bytes: number }> = [];
  private bufferedBytes = 0;
  private readonly waiters: Waiter<T>[] = [];
  /** Why the producer ended it (`undefined`: it completed), once it did. */
  private endError: BusError | undefined;
  /** Credit granted and not yet used by an item. */
  private grantedItems = 0;
  private grantedBytes = 0;
  /** Consumed since credit was last granted. */
  private consumedItems = 0;
  private consumedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingSince = 0;
  private readonly onAbort = () => this.fail(this.abortError());
  /** Set by the first `next()`. */
  private config!: StreamPlan;

  /**
   * @param planner - checks the arguments and plans the stream, on the first `next()`.
   * @param site - the call site, for the stacks of rejections.
   */
  constructor(
    private readonly planner: StreamPlanner,
    private readonly site: Error | undefined,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * The next item; opens the stream on the first call. An async function, so that a rejection's
   * stack names the line of the loop that awaited it (V8's async stack traces), as calls do.
   */
  async next(): Promise<IteratorResult<T>> {
    try {
      return await this.pull();
    } catch (error) {
      throw atCaller(error as BusError, this.site);
    }
  }

  private pull(): Promise<IteratorResult<T>> {
    if (this.state === 'idle') this.start();
    if (this.buffer.length > 0) return this.take();
    if (this.state === 'ended') return this.finishEnded();
    if (this.state === 'done') return Promise.resolve(DONE);
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      if (this.waiters.length === 0) this.waitingSince = performance.now();
      this.waiters.push({ resolve, reject });
      this.arm();
    });
  }

  /** Stops the stream quietly (`break`): the remote generator is stopped. */
  return(): Promise<IteratorResult<T>> {
    if (this.state === 'open') this.handle?.cancel();
    this.finish();
    for (const w of this.waiters.splice(0)) w.resolve(DONE);
    return Promise.resolve(DONE);
  }

  // ------------------------------------------------------------------ from the link

  item(frame: StreamItemFrame, bytes: number): void {
    if (this.state !== 'open') return;
    if (this.grantedItems <= 0 || this.grantedBytes <= 0) {
      this.fail(
        new BusError(
          'PROTOCOL',
          `${this.config.label}: the producer sent an item it was not granted credit for; the stream was stopped`,
        ),
      );
      return;
    }
    this.grantedItems--;
    this.grantedBytes -= bytes;
    this.buffer.push({ frame, bytes });
    this.bufferedBytes += bytes;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      if (this.waiters.length > 0) this.waitingSince = performance.now();
      this.take().then(waiter.resolve, waiter.reject);
    }
  }

  end(error: BusError | undefined): void {
    if (this.state !== 'open') return;
    this.state = 'ended';
    this.endError = error;
    this.clearTimer();
    if (this.buffer.length === 0) {
      const waiters = this.waiters.splice(0);
      for (const w of waiters) this.finishEnded().then(w.resolve, w.reject);
    }
  }

  // ------------------------------------------------------------------ inside

  private start(): void {
    let signal: AbortSignal | undefined;
    try {
      this.config = this.planner();
      signal = this.config.signal;
      if (signal?.aborted) throw this.abortError();
      this.state = 'open';
      this.grantedItems = this.config.windowItems;
      this.grantedBytes = this.config.windowBytes;
      this.handle = this.config.open(this, this.config.windowItems, this.config.windowBytes);
    } catch (error) {
      this.state = 'ended';
      this.endError = error instanceof BusError ? error : new BusError('PROTOCOL', String(error));
      return;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Takes the first buffered item: validates it, grants credit for it. */
  private take(): Promise<IteratorResult<T>> {
    const { frame, bytes } = this.buffer.shift()!;
    this.bufferedBytes -= bytes;
    let value: T;
    try {
      value = this.config.decode(frame) as T;
    } catch (error) {
      const e = error instanceof BusError ? error : new BusError('PROTOCOL', String(error));
      if (this.state === 'open') this.handle?.cancel();
      this.finish();
      this.rejectWaiters(e);
      return Promise.reject(e);
    }
    if (this.state === 'open') this.grant(bytes);
    else if (this.state === 'ended' && this.buffer.length === 0) {
      // The producer ended while these items waited: settle whoever waits after this one.
      const waiters = this.waiters.splice(0);
      for (const w of waiters) this.finishEnded().then(w.resolve, w.reject);
    }
    return Promise.resolve({ done: false, value });
  }

  /**
   * Counts one item consumed; once half a window (in items or bytes) was consumed, grants credit
   * back up to the full window. The producer counts its credit the same way (bytes may go below
   * zero by the item that used the last of them), so both agree on what is outstanding.
   */
  private grant(bytes: number): void {
    this.consumedItems++;
    this.consumedBytes += bytes;
    const { windowItems, windowBytes } = this.config;
    if (this.consumedItems * 2 < windowItems && this.consumedBytes * 2 < windowBytes) return;
    this.consumedItems = 0;
    this.consumedBytes = 0;
    const items = Math.max(0, windowItems - this.grantedItems - this.buffer.length);
    const more = Math.max(0, windowBytes - this.grantedBytes - this.bufferedBytes);
    if (items === 0 && more === 0) return;
    this.grantedItems += items;
    this.grantedBytes += more;
    this.handle?.credit(items, more);
  }

  private finishEnded(): Promise<IteratorResult<T>> {
    const error = this.endError;
    this.finish();
    return error === undefined ? Promise.resolve(DONE) : Promise.reject(error);
  }

  /** Ends the stream with `error`: tells the producer, rejects who waits, and the next `next()`. */
  private fail(error: BusError): void {
    if (this.state === 'done') return;
    if (this.state === 'open') this.handle?.cancel();
    this.buffer.length = 0;
    this.bufferedBytes = 0;
    if (this.waiters.length > 0) {
      this.finish();
      this.rejectWaiters(error);
    } else {
      this.state = 'ended';
      this.endError = error;
      this.clearTimer();
    }
  }

  private rejectWaiters(error: BusError): void {
    const waiters = this.waiters.splice(0);
    for (const w of waiters) w.reject(error);
  }

  private finish(): void {
    this.state = 'done';
    this.buffer.length = 0;
    this.bufferedBytes = 0;
    this.clearTimer();
    this.config?.signal?.removeEventListener('abort', this.onAbort);
  }

  private abortError(): BusError {
    return new BusError('ABORTED', `${this.config.label} was aborted`, {
      cause: this.config.signal?.reason,
    });
  }

  /** One unref'd timer per waiting period, re-armed only when it fires early. */
  private arm(): void {
    if (this.timer !== undefined) return;
    const left = this.config.timeoutMs - (performance.now() - this.waitingSince);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (this.waiters.length === 0 || this.state !== 'open') return;
        if (performance.now() - this.waitingSince >= this.config.timeoutMs - 1) {
          this.fail(
            new BusError(
              'TIMEOUT',
              `${this.config.label}: no item within ${this.config.timeoutMs} ms (timeoutMs)`,
            ),
          );
        } else this.arm();
      },
      Math.max(1, left),
    );
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
