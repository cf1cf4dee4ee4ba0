/**
 * The primary's lock table: one lease per lock name, waiters served FIFO, fencing tokens from
 * one counter, leases ended by release, by their TTL, or at once by their holder's exit.
 *
 * @module
 */
import type { Origin } from '../bus/types.js';
import { BusError } from '../errors.js';

/** What a granted acquire answers: the fencing token and the lease's end (epoch ms). */
export interface Grant {
  readonly t: number;
  readonly x: number;
}

interface Lease {
  readonly token: number;
  readonly holder: Origin;
  /** The holder's acquire id, to match a late cancel. */
  readonly acquireId: number;
  readonly expiresAt: number;
  readonly timer: NodeJS.Timeout;
}

interface Waiter {
  readonly origin: Origin;
  readonly acquireId: number;
  readonly ttlMs: number;
  readonly resolve: (grant: Grant) => void;
  readonly reject: (error: BusError) => void;
  timer: NodeJS.Timeout | undefined;
  cleanup: (() => void) | undefined;
}

interface Lock {
  lease: Lease | undefined;
  readonly waiters: Waiter[];
}

/** Counts of the table, for tests and leak checks. */
export interface LockStats {
  /** Leases held. */
  readonly leases: number;
  /** Acquires waiting. */
  readonly waiters: number;
}

/** Every lock of the cluster, held by the primary. */
export class LockTable {
  private readonly locks = new Map<string, Lock>();
  private closed = false;

  /**
   * @param lastToken - the last fencing token granted (from a snapshot), so tokens keep growing.
   * @param onGrant - told of each grant (the token counter moved: the snapshot is dirty).
   * @param now - the clock, epoch ms.
   */
  constructor(
    private lastToken = 0,
    private readonly onGrant: () => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** The last fencing token granted. */
  get token(): number {
    return this.lastToken;
  }

  /** Leases held and acquires waiting. */
  stats(): LockStats {
    let leases = 0;
    let waiters = 0;
    for (const lock of this.locks.values()) {
      if (lock.lease !== undefined) leases++;
      waiters += lock.waiters.length;
    }
    return { leases, waiters };
  }

  /**
   * Grants lock `name` to `origin` now if it is free and nobody waits, else queues the request
   * for at most `waitMs` (0: reject at once). `signal` aborting (the caller gave up or went away)
   * drops the waiter.
   *
   * @returns the grant, or a promise of it.
   * @throws {@link BusError} `LOCK_TIMEOUT`, `CLOSED`; `ABORTED` when `signal` fires.
   */
  acquire(
    name: string,
    origin: Origin,
    acquireId: number,
    ttlMs: number,
    waitMs: number,
    signal: () => AbortSignal,
  ): Grant | Promise<Grant> {
    if (this.closed) throw new BusError('CLOSED', `lock '${name}': the store host is closed`);
    let lock = this.locks.get(name);
    if (lock === undefined) {
      lock = { lease: undefined, waiters: [] };
      this.locks.set(name, lock);
    }
    if (lock.lease === undefined && lock.waiters.length === 0) {
      return this.grant(name, lock, origin, acquireId, ttlMs);
    }
    if (waitMs === 0) {
      this.forgetIfIdle(name, lock);
      throw timeout(name, waitMs);
    }
    const queue = lock;
    return new Promise<Grant>((resolve, reject) => {
      const waiter: Waiter = {
        origin,
        acquireId,
        ttlMs,
        resolve,
        reject,
        timer: undefined,
        cleanup: undefined,
      };
      waiter.timer = setTimeout(
        () => this.drop(name, queue, waiter, timeout(name, waitMs)),
        waitMs,
      );
      waiter.timer.unref();
      const s = signal();
      const onAbort = () =>
        this.drop(
          name,
          queue,
          waiter,
          new BusError('ABORTED', `lock '${name}': the caller gave up waiting`),
        );
      if (s.aborted) {
        clearTimeout(waiter.timer);
        reject(new BusError('ABORTED', `lock '${name}': the caller gave up waiting`));
        return;
      }
      s.addEventListener('abort', onAbort, { once: true });
      waiter.cleanup = () => s.removeEventListener('abort', onAbort);
      queue.waiters.push(waiter);
    });
  }

  /**
   * Releases lock `name` if its lease still has fencing token `token`, and grants it to the next
   * waiter. Returns whether it released.
   */
  release(name: string, token: number): boolean {
    const lock = this.locks.get(name);
    if (lock?.lease?.token !== token) return false;
    this.endLease(name, lock);
    return true;
  }

  /**
   * The caller of acquire `acquireId` gave up (timeout or abort on its side): drops its waiter,
   * or frees the lease it was granted meanwhile, which nobody would ever release.
   */
  cancel(name: string, origin: Origin, acquireId: number): void {
    const lock = this.locks.get(name);
    if (lock === undefined) return;
    const lease = lock.lease;
    if (lease !== undefined && lease.holder === origin && lease.acquireId === acquireId) {
      this.endLease(name, lock);
      return;
    }
    const waiter = lock.waiters.find((w) => w.origin === origin && w.acquireId === acquireId);
    if (waiter !== undefined) {
      this.drop(name, lock, waiter, new BusError('ABORTED', `lock '${name}': cancelled`));
    }
  }

  /** Process `origin` is gone: its leases end at once, its waiters leave the queues. */
  gone(origin: Origin): void {
    for (const [name, lock] of [...this.locks]) {
      for (const w of lock.waiters.filter((x) => x.origin === origin)) {
        this.drop(
          name,
          lock,
          w,
          new BusError('TARGET_EXITED', `lock '${name}': the caller went away`),
        );
      }
      if (lock.lease?.holder === origin) this.endLease(name, lock);
    }
  }

  /** Rejects every waiter with `CLOSED`, ends every lease, clears every timer. */
  close(): void {
    this.closed = true;
    for (const [name, lock] of this.locks) {
      if (lock.lease !== undefined) clearTimeout(lock.lease.timer);
      lock.lease = undefined;
      for (const w of lock.waiters.splice(0)) {
        settleWaiter(w);
        w.reject(new BusError('CLOSED', `lock '${name}': the store host closed`));
      }
    }
    this.locks.clear();
  }

  private grant(name: string, lock: Lock, holder: Origin, acquireId: number, ttlMs: number): Grant {
    const token = ++this.lastToken;
    const expiresAt = this.now() + ttlMs;
    const timer = setTimeout(() => {
      if (lock.lease?.token === token) this.endLease(name, lock);
    }, ttlMs);
    timer.unref();
    lock.lease = { token, holder, acquireId, expiresAt, timer };
    this.onGrant();
    return { t: token, x: expiresAt };
  }

  /** Ends the lease of `lock` and hands the lock to the first waiter, if any. */
  private endLease(name: string, lock: Lock): void {
    if (lock.lease !== undefined) clearTimeout(lock.lease.timer);
    lock.lease = undefined;
    const next = lock.waiters.shift();
    if (next === undefined) {
      this.forgetIfIdle(name, lock);
      return;
    }
    settleWaiter(next);
    next.resolve(this.grant(name, lock, next.origin, next.acquireId, next.ttlMs));
  }

  /** Removes `waiter` from the queue and rejects it with `error` (no-op if already served). */
  private drop(name: string, lock: Lock, waiter: Waiter, error: BusError): void {
    const i = lock.waiters.indexOf(waiter);
    if (i < 0) return;
    lock.waiters.splice(i, 1);
    settleWaiter(waiter);
    waiter.reject(error);
    this.forgetIfIdle(name, lock);
  }

  private forgetIfIdle(name: string, lock: Lock): void {
    if (lock.lease === undefined && lock.waiters.length === 0 && this.locks.get(name) === lock) {
      this.locks.delete(name);
    }
  }
}

function settleWaiter(w: Waiter): void {
  if (w.timer !== undefined) clearTimeout(w.timer);
  w.timer = undefined;
  w.cleanup?.();
  w.cleanup = undefined;
}

function timeout(name: string, waitMs: number): BusError {
  return new BusError(
    'LOCK_TIMEOUT',
    `lock '${name}' was not acquired within ${waitMs} ms (another holder kept it)`,
  );
}
