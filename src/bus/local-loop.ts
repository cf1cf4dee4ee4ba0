/**
 * The loop a process's calls and publishes to itself go through. Jobs run in the order they were
 * posted, after the poster's current job (a microtask), so a local call or publish never runs
 * inside the call that issued it. A process that keeps calling itself would otherwise never leave
 * the microtask queue: routing, timers and signals would wait for its whole loop. So once jobs
 * have run for {@link LOCAL_SLICE_MS} without the event loop turning, the next job waits for a
 * macrotask (`setImmediate`), which lets I/O and timers run first.
 *
 * Whether the event loop turned is known, not guessed from time: each slice arms one unref'd
 * `setImmediate` marker, which runs only once the event loop gets to its check phase. A slice
 * costs one immediate, not one per job.
 *
 * @module
 */

/** How long local jobs may run back to back before the loop yields to the event loop, in ms. */
export const LOCAL_SLICE_MS = 5;

/** An ordered queue of local jobs that yields to the event loop every {@link LOCAL_SLICE_MS}. */
export class LocalLoop {
  private jobs: Array<() => void> = [];
  private scheduled = false;
  /** When the current slice began (performance.now()); valid while {@link inSlice}. */
  private sliceStart = 0;
  /** A slice is under way: the event loop has not turned since it began. */
  private inSlice = false;
  /** The marker of the current slice, and the hop to the next one, if armed. */
  private marker: NodeJS.Immediate | undefined;
  private hop: NodeJS.Immediate | undefined;

  /** Runs `job` after the current job, in order with every job posted before it. */
  post(job: () => void): void {
    this.jobs.push(job);
    if (this.scheduled) return;
    this.scheduled = true;
    if (!this.inSlice) {
      this.beginSlice();
      queueMicrotask(this.drain);
      return;
    }
    if (performance.now() - this.sliceStart < LOCAL_SLICE_MS) {
      queueMicrotask(this.drain);
      return;
    }
    // The slice is used up: the next one starts on a macrotask of its own.
    this.hop = setImmediate(this.nextSlice);
  }

  private beginSlice(): void {
    this.inSlice = true;
    this.sliceStart = performance.now();
    this.marker = setImmediate(this.turned);
    this.marker.unref();
  }

  /** The event loop reached its check phase: the slice it marked is over. */
  private readonly turned = (): void => {
    this.marker = undefined;
    this.inSlice = false;
  };

  private readonly nextSlice = (): void => {
    this.hop = undefined;
    this.beginSlice();
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
    this.inSlice = false;
    if (this.marker !== undefined) clearImmediate(this.marker);
    if (this.hop !== undefined) clearImmediate(this.hop);
    this.marker = undefined;
    this.hop = undefined;
  }
}
