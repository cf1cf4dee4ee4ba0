/**
 * The calls that wait for a thread: one queue for `'any'` and one per thread index, bounded by
 * `maxQueue` in all, each call still bound by its deadline and its signal while it waits (one
 * timer for every deadline, as `PendingCalls` does).
 *
 * @module
 */
import type { Transferable } from 'node:worker_threads';
import { BusError } from '../errors.js';
import type { ResponseFrame } from '../protocol/envelope.js';
import { DeadlineTimer } from '../util/duration.js';

/** A call, from when it is issued until it is sent to a thread. */
export interface Waiting {
  readonly method: string;
  readonly input: unknown;
  readonly transfer: readonly Transferable[] | undefined;
  /** `'any'` or a thread index. */
  readonly target: 'any' | number;
  readonly timeoutMs: number;
  /** performance.now() deadline. */
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (frame: ResponseFrame) => void;
  readonly reject: (error: BusError) => void;
  onAbort?: (() => void) | undefined;
}

/** `call 'add' to thread 2` / `to any thread`. */
export function describeCall(w: { method: string; target: 'any' | number }): string {
  return `call '${w.method}' to ${w.target === 'any' ? 'any thread' : `thread ${w.target}`}`;
}

/** The pool's waiting calls. */
export class CallQueue {
  private readonly any: Waiting[] = [];
  private readonly byThread: Waiting[][];
  private count = 0;
  private readonly timer = new DeadlineTimer(() => this.sweep());

  constructor(
    threads: number,
    private readonly maxQueue: number,
  ) {
    this.byThread = Array.from({ length: threads }, () => []);
  }

  /** Calls waiting. */
  get size(): number {
    return this.count;
  }

  /** Queues `w`; rejects it with `OVERLOADED` at `maxQueue`. */
  push(w: Waiting): void {
    if (this.count >= this.maxQueue) {
      w.reject(
        new BusError(
          'OVERLOADED',
          `${describeCall(w)} refused: ${this.count} calls wait for a thread, at maxQueue (${this.maxQueue})`,
          { data: { limit: 'maxQueue', value: this.maxQueue } },
        ),
      );
      return;
    }
    const list = this.listOf(w.target);
    list.push(w);
    this.count++;
    if (w.signal !== undefined) {
      const signal = w.signal;
      w.onAbort = () => {
        if (!this.remove(w)) return;
        w.reject(
          new BusError('ABORTED', `${describeCall(w)} was aborted`, { cause: signal.reason }),
        );
      };
      signal.addEventListener('abort', w.onAbort, { once: true });
    }
    this.timer.arm(w.deadline);
  }

  /** The next call thread `index` may take: its own first, then one for any thread. */
  take(index: number): Waiting | undefined {
    const w = this.byThread[index]!.shift() ?? this.any.shift();
    if (w !== undefined) this.detach(w);
    return w;
  }

  /** Rejects every waiting call with `error(w)` (on close). */
  rejectAll(error: (w: Waiting) => BusError): void {
    for (const list of [this.any, ...this.byThread]) {
      for (const w of list.splice(0)) {
        this.detach(w);
        w.reject(error(w));
      }
    }
    this.timer.clear();
  }

  private listOf(target: 'any' | number): Waiting[] {
    return target === 'any' ? this.any : this.byThread[target]!;
  }

  private detach(w: Waiting): void {
    this.count--;
    if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
  }

  private remove(w: Waiting): boolean {
    const list = this.listOf(w.target);
    const i = list.indexOf(w);
    if (i < 0) return false;
    list.splice(i, 1);
    this.detach(w);
    return true;
  }

  private sweep(): void {
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const list of [this.any, ...this.byThread]) {
      for (const w of [...list]) {
        if (w.deadline <= now) {
          this.remove(w);
          w.reject(
            new BusError(
              'TIMEOUT',
              `${describeCall(w)} timed out after ${w.timeoutMs} ms, waiting for a thread`,
            ),
          );
        } else if (w.deadline < next) next = w.deadline;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.timer.arm(next);
  }
}
