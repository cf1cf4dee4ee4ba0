/**
 * The hub side: TTL bookkeeping of the store host without a timer per key: a min-heap of deadlines
 * and one timer, armed for the earliest. Heap items are hints, checked against the entry when they
 * come due (an entry rewritten since has another expiry, or none), so nothing is removed from the
 * heap on write; the host rebuilds the heap when stale items outnumber live ones.
 *
 * @module
 */
import { DeadlineTimer } from '../util/duration.js';

/**
 * One deadline: `key` of store `store` expires at `at` (epoch ms), unless it was rewritten since
 * (the host checks the entry's own expiry when the item comes due).
 */
export interface Deadline {
  readonly at: number;
  readonly store: string;
  readonly key: string;
}

/** A min-heap of deadlines by `at`, and the one timer that fires for the earliest. */
export class ExpiryQueue {
  private heap: Deadline[] = [];
  /** Armed for the earliest deadline, on the queue's clock (re-armed past Node's limit). */
  private readonly timer: DeadlineTimer;

  /**
   * @param onDue - called (from the timer) when the earliest deadline has come; it should take
   *   every due item with {@link popDue} and then call {@link rearm}.
   * @param now - the clock, epoch ms.
   */
  constructor(onDue: () => void, now: () => number = Date.now) {
    this.timer = new DeadlineTimer(
      () => {
        onDue();
        this.rearm();
      },
      { now },
    );
  }

  /** How many items the heap holds (stale ones included). */
  get size(): number {
    return this.heap.length;
  }

  /** Adds a deadline and arms the timer if it is the earliest. */
  push(item: Deadline): void {
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= item.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = item;
    this.timer.arm(item.at);
  }

  /** Removes and returns the earliest item if it is due at `now`. */
  popDue(now: number): Deadline | undefined {
    const top = this.heap[0];
    if (top === undefined || top.at > now) return undefined;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) this.siftDown(last);
    return top;
  }

  /** Replaces the heap with `items` (the live deadlines), e.g. when stale items pile up. */
  rebuild(items: Deadline[]): void {
    this.heap = [];
    for (const item of items) this.push(item);
    this.rearm();
  }

  /** Arms the timer for the earliest deadline (or disarms it when there is none). */
  rearm(): void {
    this.timer.set(this.heap[0]?.at ?? Number.POSITIVE_INFINITY);
  }

  /** Stops the timer and forgets every deadline. */
  clear(): void {
    this.timer.clear();
    this.heap = [];
  }

  private siftDown(item: Deadline): void {
    const heap = this.heap;
    const n = heap.length;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && heap[right]!.at < heap[left]!.at ? right : left;
      if (heap[child]!.at >= item.at) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = item;
  }
}
