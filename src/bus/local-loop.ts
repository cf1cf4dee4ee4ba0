/**
 * The loop a process's calls and publishes to itself go through. Jobs run in the order they were
 * posted, after the poster's current job (a microtask), so a local call or publish never runs
 * inside the call that issued it. A process that keeps calling itself would otherwise never leave
 * the microtask queue: routing, timers and signals would wait for its whole loop. So once jobs
 * have run for {@link LOCAL_SLICE_MS} without the event loop turning, the next job waits for a
 * macrotask (`setImmediate`), which lets I/O and timers run first.
 *
 * @module
 */

/** How long local jobs may run back to back before the loop yields to the event loop, in ms. */
export const LOCAL_SLICE_MS = 5;

/**
 * A pause between two posts longer than this, in ms, means the poster was not looping on the
 * local loop: the next post starts a fresh slice, without a macrotask hop.
 */
const QUIET_MS = 1;

/** An ordered queue of local jobs that yields to the event loop every {@link LOCAL_SLICE_MS}. */
export class LocalLoop {
  private jobs: Array<() => void> = [];
  private scheduled = false;
  /** When the current run of jobs without a macrotask in between began (performance.now()). */
  private sliceStart = 0;
  /** When a job was last posted (performance.now()). */
  private lastPost = Number.NEGATIVE_INFINITY;
  private immediate: NodeJS.Immediate | undefined;

  /** Runs `job` after the current job, in order with every job posted before it. */
  post(job: () => void): void {
    this.jobs.push(job);
    if (this.scheduled) return;
    this.scheduled = true;
    const now = performance.now();
    if (now - this.lastPost > QUIET_MS) this.sliceStart = now;
    this.lastPost = now;
    if (now - this.sliceStart < LOCAL_SLICE_MS) {
      queueMicrotask(this.drain);
      return;
    }
    // The slice is used up: the next one starts on a macrotask of its own.
    this.immediate = setImmediate(this.startSlice);
  }

  private readonly startSlice = (): void => {
    this.immediate = undefined;
    this.sliceStart = performance.now();
    this.drain();
  };

  private readonly drain = (): void => {
    this.scheduled = false;
    const jobs = this.jobs;
    if (jobs.length === 0) return;
    this.jobs = [];
    for (const job of jobs) job();
  };

  /** Drops every job not yet run (on close: their callers are settled by the bus). */
  clear(): void {
    this.jobs = [];
    this.scheduled = false;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
  }
}
