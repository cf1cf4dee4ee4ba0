/**
 * A pool's calls on their way to a thread: checked, queued or sent at once, to the ready thread
 * with the fewest calls in flight (or the one named), through its {@link Peer}; a call given up
 * on lingers on its thread for `abortGraceMs`, after which the thread is replaced.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import { BusError } from '../errors.js';
import { Kind, type ResponseFrame } from '../protocol/envelope.js';
import type { OutgoingRequest } from '../protocol/peer.js';
import { checkDurationMs, deadline } from '../util/duration.js';
import type { Lifecycle } from './lifecycle.js';
import type { ResolvedPoolOptions, ThreadCallOptions } from './options.js';
import type { Place } from './place.js';
import { type Framed, TRANSFER } from './port-link.js';
import { CallQueue, describeCall, type Waiting } from './queue.js';

/** Where a pool call goes: `'any'` thread, or a thread index (0-based). */
export type ThreadTarget = 'any' | number;

/** Codes of a call this side gave up on: its handler may still run. */
const GIVEN_UP = new Set(['ABORTED', 'TIMEOUT']);
/** Codes of a call no thread answered. */
const NOT_SERVED = new Set(['ABORTED', 'TIMEOUT', 'TARGET_EXITED', 'CLOSED', 'INVALID_ARGUMENT']);

/** The calling side of a pool. */
export class Dispatcher {
  /** The calls waiting for a thread. */
  readonly queue: CallQueue;
  /** Calls the threads answered. */
  served = 0;
  /** Set when `postMessage` refused an event frame (read by `publish`). */
  publishRefused: string | undefined;

  constructor(
    private readonly contract: Contract,
    private readonly options: ResolvedPoolOptions,
    private readonly lifecycle: Lifecycle,
    private readonly closing: () => boolean,
    private readonly onFreed: () => void,
  ) {
    this.queue = new CallQueue(options.threads, options.maxQueue);
  }

  /** Whether no call waits or is in flight (cancelled ones still running aside). */
  idle(): boolean {
    return (
      this.queue.size === 0 && this.lifecycle.places.every((p) => (p.peer?.pendingCount ?? 0) === 0)
    );
  }

  /** Checks a call before it is queued or sent. */
  check(method: string, options: ThreadCallOptions | undefined): void {
    if (this.closing()) throw new BusError('CLOSED', `call '${method}': the pool is closed`);
    if (!this.contract.methods.has(method)) {
      throw new BusError('INVALID_ARGUMENT', `call: '${method}' is not a method of the contract`);
    }
    if (options === undefined) return;
    if (typeof options !== 'object' || options === null) {
      throw new BusError('INVALID_ARGUMENT', `call '${method}': options must be an object`);
    }
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `call '${method}': options.signal must be an AbortSignal`,
      );
    }
    if (options.transfer !== undefined && !Array.isArray(options.transfer)) {
      throw new BusError('INVALID_ARGUMENT', `call '${method}': options.transfer must be an array`);
    }
  }

  /** Queues or sends a call; settles with the thread's response frame. */
  issue(
    target: ThreadTarget,
    method: string,
    input: unknown,
    options: ThreadCallOptions | undefined,
  ): Promise<ResponseFrame> {
    return new Promise<ResponseFrame>((resolve, reject) => {
      this.check(method, options);
      if (
        target !== 'any' &&
        !(Number.isSafeInteger(target) && target >= 0 && target < this.options.threads)
      ) {
        throw new BusError(
          'INVALID_ARGUMENT',
          `call '${method}': target must be 'any' or a thread index from 0 to ${this.options.threads - 1}, got ${JSON.stringify(target) ?? String(target)}`,
        );
      }
      const timeoutMs =
        options?.timeoutMs === undefined
          ? this.options.callTimeoutMs
          : checkDurationMs(options.timeoutMs, 'timeoutMs');
      const signal = options?.signal;
      if (signal?.aborted) {
        throw new BusError('ABORTED', `${describeCall({ method, target })} was aborted`, {
          cause: signal.reason,
        });
      }
      const w: Waiting = {
        method,
        input,
        transfer: options?.transfer,
        target,
        timeoutMs,
        deadline: performance.now() + timeoutMs,
        signal,
        resolve,
        reject,
      };
      const place = this.pick(target);
      if (place === undefined) this.queue.push(w);
      else this.send(place, w);
    });
  }

  /** A thread that can take a call for `target` now, if any. */
  private pick(target: ThreadTarget): Place | undefined {
    const max = this.options.maxInFlightPerThread;
    if (target !== 'any') {
      const p = this.lifecycle.places[target]!;
      return p.takes(max) ? p : undefined;
    }
    let best: Place | undefined;
    for (const p of this.lifecycle.places) {
      if (p.takes(max) && (best === undefined || p.load < best.load)) best = p;
    }
    return best;
  }

  /** Sends queued calls to `place` while it has room. */
  pump(place: Place): void {
    while (place.takes(this.options.maxInFlightPerThread)) {
      const w = this.queue.take(place.index);
      if (w === undefined) break;
      this.send(place, w);
    }
  }

  private send(place: Place, w: Waiting): void {
    const peer = place.peer!;
    const left = w.deadline - performance.now();
    if (left <= 0) {
      w.reject(
        new BusError(
          'TIMEOUT',
          `${describeCall(w)} timed out after ${w.timeoutMs} ms, waiting for a thread`,
        ),
      );
      return;
    }
    const frame: OutgoingRequest = { k: Kind.request, m: w.method };
    if (w.input !== undefined) frame.p = w.input;
    if (w.transfer !== undefined && w.transfer.length > 0) (frame as Framed)[TRANSFER] = w.transfer;
    let id = 0;
    id = peer.issue(
      frame,
      { to: `thread ${place.index}`, timeoutMs: left, signal: w.signal },
      (response) => {
        place.served++;
        this.served++;
        w.resolve(response);
        this.freed(place);
      },
      (error) => {
        if (!NOT_SERVED.has(error.code)) {
          place.served++;
          this.served++;
        }
        if (id !== 0 && GIVEN_UP.has(error.code) && !peer.closed) this.linger(place, id);
        w.reject(error);
        this.freed(place);
      },
    );
  }

  /** A call given up on: its handler has `abortGraceMs` to return, else the thread is replaced. */
  private linger(place: Place, id: number): void {
    place.lingering.set(
      id,
      deadline(() => {
        place.lingering.delete(id);
        this.lifecycle.terminate(place);
      }, this.options.abortGraceMs),
    );
  }

  private freed(place: Place): void {
    this.pump(place);
    this.onFreed();
  }

  /** A frame `postMessage` refused: a request fails with `INVALID_ARGUMENT`. */
  refused(index: number, message: Framed, error: unknown): void {
    const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    if (message.k === Kind.event) {
      this.publishRefused = why;
      return;
    }
    if (message.k === Kind.request && typeof message.i === 'number') {
      this.lifecycle.places[index]?.peer?.cancel(
        message.i,
        'INVALID_ARGUMENT',
        `call '${String(message.m)}' to thread ${index}: the input cannot be copied to a thread (${why})`,
      );
    }
  }
}
