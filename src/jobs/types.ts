/**
 * Both sides: the public shapes of run-once jobs (`bus.singleton`) and of scheduled ones
 * (`bus.schedule`): their contexts, options and handles.
 *
 * @module
 */

/** What a run-once job is given. @category Jobs */
export interface SingletonContext {
  /** The job's name, as given to `bus.singleton`. */
  readonly name: string;
  /**
   * The fencing token of this run's lease: strictly greater than every token granted before it
   * (by any lock of the cluster), so a later run always has a larger one. Pass it with the job's
   * writes so the resource can refuse those of a run that lost its leadership.
   */
  readonly fencingToken: number;
  /**
   * Aborts when this run must end: its leadership was lost (a renewal failed or did not arrive
   * before the lease's end, or this process lost its link to the primary), or the job was stopped
   * (`handle.stop()`, the bus's close). Its `reason` is a `BusError`: `LEASE_EXPIRED` (or the
   * renewal's own code) for a lost leadership, `ABORTED` for `stop()`, `CLOSED` for a close.
   */
  readonly signal: AbortSignal;
}

/**
 * A run-once job: long-lived, it runs until `ctx.signal` aborts (or returns, or throws).
 * @category Jobs
 */
export type SingletonJob = (ctx: SingletonContext) => unknown;

/** Options of `bus.singleton`. @category Jobs */
export interface SingletonOptions {
  /**
   * The time to live of the job's lease, in ms: if its holder stops renewing it (its process
   * hangs, or its link to the primary stalls), another process takes over this long after the
   * last renewal at most. A holder that exits or disconnects is taken over at once.
   * @default 10_000
   */
  readonly ttlMs?: number;
  /**
   * How often the leader renews its lease (`lease.extend(ttlMs)`), in ms; less than `ttlMs`.
   * @default ttlMs / 3
   */
  readonly renewMs?: number;
  /**
   * After the job returned or threw, how long its process keeps the lease before releasing it,
   * in ms, so that the job starts again (in whichever process then gets the lock) no sooner than
   * this after it ended. `0`: at once.
   * @default 1_000
   */
  readonly restartDelayMs?: number;
  /**
   * When asking for the lease failed for another reason than another holder (the primary did not
   * answer, has no store host yet), the wait before asking again, in ms. The failure is reported
   * on the bus's `error` event.
   * @default 1_000
   */
  readonly retryMs?: number;
}

/** A running `bus.singleton` (or `bus.schedule`) in this process. @category Jobs */
export interface SingletonHandle {
  /** The job's name. */
  readonly name: string;
  /** Whether this process holds the job's lease now (its job runs, or waits out `restartDelayMs`). */
  readonly isLeader: boolean;
  /** The fencing token of the lease this process holds, or `undefined` when it holds none. */
  readonly fencingToken: number | undefined;
  /**
   * Stops the job in this process: leaves the queue for the lease, aborts a running job's
   * `ctx.signal` with `ABORTED`, waits for the job to return (the lease is kept, and renewed,
   * until then, so no other process starts the job meanwhile), then releases the lease, and
   * another process takes over at once. Idempotent; resolves, never rejects. A job that ignores
   * its signal keeps `stop()` pending (and the lease held) until it returns.
   */
  stop(): Promise<void>;
  /** Same as {@link SingletonHandle.stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** What a scheduled tick is given. @category Jobs */
export interface TickContext extends SingletonContext {
  /** When this tick was due by the expression (a tick that fires late keeps its due time). */
  readonly scheduledAt: Date;
}

/** One tick of a scheduled job: runs in the leader only. @category Jobs */
export type TickJob = (ctx: TickContext) => unknown;

/** Options of `bus.schedule`: a singleton's, and the cron expression's time zone. @category Jobs */
export interface ScheduleOptions extends SingletonOptions {
  /** The IANA time zone the expression is read in (croner's `timezone`). @default the process's */
  readonly timezone?: string;
}

/** The jobs extension's API, on the primary's bus and on every worker's. @category Jobs */
export interface JobsApi {
  /**
   * Runs `job(ctx)` in exactly one live process of the cluster at a time: every process that
   * calls `singleton(name, …)` queues for the lease of lock `$singleton.<name>` (a reserved name:
   * `bus.lock` refuses names starting with `$`); the one granted runs the job and renews the
   * lease every `renewMs`. `ctx.signal` aborts when the leadership is lost or the job is stopped.
   * When the job returns or throws (a throw is reported on the bus's `error` event as
   * `JOB_FAILED`), the lease is released after `restartDelayMs`, and the job starts again in
   * whichever process gets the lock then. When the leader's process exits, the next process
   * starts the job as soon as the primary sees the exit; when it hangs, within `ttlMs`.
   * Closing the bus stops it.
   *
   * @param name - non-empty, at most 1,000 characters; one running singleton per name per bus.
   * @returns its {@link SingletonHandle}.
   * @throws {@link BusError} (synchronously) `INVALID_ARGUMENT` (a bad name or option, a job
   *   that is not a function, a name this bus already runs), `CLOSED` on a closed bus.
   */
  singleton(name: string, job: SingletonJob, options?: SingletonOptions): SingletonHandle;
  /**
   * Runs `tick(ctx)` at each time of the cron expression `cron` (croner's syntax: 5 fields, or 6
   * with seconds first, or a nickname such as `@hourly`), in the leader of singleton `name`
   * only: a {@link JobsApi.singleton} whose job is the schedule. A tick that throws is reported
   * as `JOB_FAILED` and the schedule goes on; a tick due while the previous one still runs is
   * skipped and reported as `JOB_FAILED` (`data.skipped: true`). Ticks due while no process
   * leads (a takeover) are not run later.
   *
   * @returns its {@link SingletonHandle}, once the expression was parsed.
   * @throws never synchronously; rejects with {@link BusError} `INVALID_ARGUMENT` for an
   *   expression croner refuses, or when the optional peer dependency `croner` is not installed;
   *   and as {@link JobsApi.singleton} does.
   */
  schedule(
    name: string,
    cron: string,
    tick: TickJob,
    options?: ScheduleOptions,
  ): Promise<SingletonHandle>;
}
