/**
 * Both sides: one run-once job in one process (`bus.singleton`), built on the primary's lock
 * table. The process queues for the lease of `$singleton.<name>`; granted, it runs the job,
 * renews the lease every `renewMs`, and aborts the job's signal as soon as the leadership is
 * lost: a renewal that fails, or that has not arrived by the lease's end (by the local clock, so
 * a process that was paused finds out when it resumes). Whatever ends a run, the next one in this
 * process waits until the job has settled: never two runs in one process.
 *
 * @module
 */
import { BusError, toBusError } from '../errors.js';
import type { Lease } from '../state/types.js';
import { DeadlineTimer } from '../util/duration.js';
import { sleep } from '../util/sleep.js';
import type { SingletonContext, SingletonHandle, SingletonJob } from './types.js';

/** The prefix of a singleton's lock name (in the namespace `bus.lock` refuses). */
export const SINGLETON_LOCK_PREFIX = '$singleton.';
/** How long one acquire waits in the lock's queue before asking again, in ms. */
const ACQUIRE_WAIT_MS = 30_000;

/** The options of one singleton, checked and with their defaults. */
export interface SingletonSettings {
  readonly ttlMs: number;
  readonly renewMs: number;
  readonly restartDelayMs: number;
  readonly retryMs: number;
}

/** What a singleton needs of its bus. */
export interface SingletonHost {
  /** Acquires a lock of the reserved namespace (state's `systemLock`). */
  lock(
    name: string,
    options: { ttlMs: number; waitMs: number; signal: AbortSignal },
  ): Promise<Lease>;
  /** Reports what has nobody to reject, on the bus's `error` event. */
  report(error: BusError): void;
}

/** One singleton's loop in one process. */
export class Singleton implements SingletonHandle {
  private readonly stopping = new AbortController();
  private lease: Lease | undefined;
  /** The running job's signal, to abort it on stop. */
  private job: AbortController | undefined;
  /** Settles when the loop has ended: the job settled, the lease released. Never rejects. */
  readonly done: Promise<void>;

  constructor(
    readonly name: string,
    private readonly run: SingletonJob,
    private readonly settings: SingletonSettings,
    private readonly host: SingletonHost,
  ) {
    this.done = this.loop();
  }

  get isLeader(): boolean {
    return this.lease !== undefined;
  }

  get fencingToken(): number | undefined {
    return this.lease?.token;
  }

  stop(reason?: BusError): Promise<void> {
    if (!this.stopping.signal.aborted) {
      const why = reason ?? new BusError('ABORTED', `singleton '${this.name}' was stopped`);
      this.stopping.abort(why);
      this.job?.abort(why);
    }
    return this.done;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private async loop(): Promise<void> {
    const stop = this.stopping.signal;
    while (!stop.aborted) {
      let lease: Lease;
      try {
        lease = await this.host.lock(`${SINGLETON_LOCK_PREFIX}${this.name}`, {
          ttlMs: this.settings.ttlMs,
          waitMs: ACQUIRE_WAIT_MS,
          signal: stop,
        });
      } catch (error) {
        const e = toBusError(error, 'PROTOCOL');
        if (stop.aborted || e.code === 'CLOSED') return;
        if (e.code === 'LOCK_TIMEOUT') continue;
        this.host.report(
          new BusError(
            e.code,
            `singleton '${this.name}': asking for the lease failed: ${e.message}`,
            {
              cause: e,
              data: { singleton: this.name },
            },
          ),
        );
        await sleep(this.settings.retryMs, stop, { unref: true }).catch(() => {});
        continue;
      }
      if (stop.aborted) {
        await this.release(lease);
        return;
      }
      await this.lead(lease);
    }
  }

  /** Releases `lease`; a failure that is not the bus going away is reported. */
  private async release(lease: Lease): Promise<void> {
    this.lease = undefined;
    await lease.release().catch((error: unknown) => {
      const e = toBusError(error, 'PROTOCOL');
      const gone = e.code === 'CLOSED' || e.code === 'TARGET_EXITED' || e.code === 'NO_HANDLER';
      if (!gone) this.host.report(e);
    });
  }

  /** Runs the job under `lease`, renewing it, until the job settles; then releases the lease. */
  private async lead(lease: Lease): Promise<void> {
    if (lease.expiresAt <= Date.now()) {
      // The grant arrived after its lease's end (this process was busy): another may hold it.
      this.host.report(
        new BusError(
          'LEASE_EXPIRED',
          `singleton '${this.name}': lease ${lease.token} had ended when its grant arrived; the job did not run`,
          { data: { singleton: this.name, fencingToken: lease.token } },
        ),
      );
      await this.release(lease);
      return;
    }
    this.lease = lease;
    const renewing = new AbortController();
    const job = new AbortController();
    this.job = job;
    let lost: BusError | undefined;
    const lose = (error: BusError): void => {
      if (lost !== undefined || renewing.signal.aborted) return;
      lost = error;
      this.lease = undefined;
      renewing.abort();
      // The store host that granted the lease is gone (NO_HANDLER: it closed, as app.close()
      // does before the primary's bus): the singleton ends with it, as on a close.
      const closed = error.code === 'CLOSED' || error.code === 'NO_HANDLER';
      const reason = new BusError(
        closed ? 'CLOSED' : 'LEASE_EXPIRED',
        `singleton '${this.name}' lost its leadership (lease ${lease.token}): ${error.message}`,
        { cause: error, data: { singleton: this.name, fencingToken: lease.token } },
      );
      if (closed) this.stopping.abort(reason);
      job.abort(reason);
      if (!closed && !this.stopping.signal.aborted) this.host.report(reason);
    };
    // The lease's end by this process's clock: the job is told before another can be granted.
    const end = new DeadlineTimer(
      () =>
        lose(
          new BusError('LEASE_EXPIRED', 'no renewal arrived before the end of the lease', {
            data: { lock: lease.name, token: lease.token },
          }),
        ),
      { now: Date.now },
    );
    end.set(lease.expiresAt);
    const renewals = this.renew(lease, renewing.signal, end, lose);
    if (this.stopping.signal.aborted) job.abort(this.stopping.signal.reason);
    const ctx: SingletonContext = {
      name: this.name,
      fencingToken: lease.token,
      signal: job.signal,
    };
    try {
      await this.run(ctx);
    } catch (error) {
      // A throw once the signal aborted is how a job ends: not a failure.
      if (!job.signal.aborted) {
        this.host.report(
          new BusError(
            'JOB_FAILED',
            `singleton '${this.name}' (lease ${lease.token}) threw: ${toBusError(error, 'JOB_FAILED').message}`,
            {
              cause: error,
              data: { singleton: this.name, fencingToken: lease.token },
            },
          ),
        );
      }
    }
    if (this.job === job) this.job = undefined;
    if (lost === undefined && !this.stopping.signal.aborted && this.settings.restartDelayMs > 0) {
      // Keep the lease (renewed) for the delay, so no process restarts the job sooner.
      const until = either(renewing.signal, this.stopping.signal);
      await sleep(this.settings.restartDelayMs, until.signal, { unref: true }).catch(() => {});
      until.dispose();
    }
    renewing.abort();
    end.clear();
    // Not awaited: an extend still in flight (the primary slow to answer, up to the bus's
    // callTimeoutMs) must not hold up the release or stop(); its answer is ignored.
    void renewals;
    if (lost === undefined) {
      await this.release(lease);
      return;
    }
    // Lost: a lease that has ended needs no release; one that may still be held (a renewal that
    // failed otherwise) is released without waiting for an answer that may not come.
    this.lease = undefined;
    const ended = ['LEASE_EXPIRED', 'CLOSED', 'NO_HANDLER', 'TARGET_EXITED'];
    if (!ended.includes(lost.code)) void this.release(lease);
  }

  /** Extends `lease` every `renewMs` until `signal` aborts; a failed renewal loses it. */
  private async renew(
    lease: Lease,
    signal: AbortSignal,
    end: DeadlineTimer,
    lose: (error: BusError) => void,
  ): Promise<void> {
    const { ttlMs, renewMs } = this.settings;
    for (;;) {
      try {
        await sleep(renewMs, signal, { unref: true });
      } catch {
        return;
      }
      const sentAt = Date.now();
      try {
        const expiresAt = await lease.extend(ttlMs);
        if (signal.aborted) return;
        end.set(Math.min(expiresAt, sentAt + ttlMs));
      } catch (error) {
        lose(toBusError(error, 'PROTOCOL'));
        return;
      }
    }
  }
}

/** A signal that aborts when either of `a` and `b` does, and its remover. */
function either(a: AbortSignal, b: AbortSignal): { signal: AbortSignal; dispose(): void } {
  const both = new AbortController();
  const abort = () => both.abort();
  if (a.aborted || b.aborted) abort();
  a.addEventListener('abort', abort, { once: true });
  b.addEventListener('abort', abort, { once: true });
  return {
    signal: both.signal,
    dispose() {
      a.removeEventListener('abort', abort);
      b.removeEventListener('abort', abort);
    },
  };
}
