/**
 * The hub side: the lock table, one lease per lock name, waiters served FIFO, fencing tokens from
 * one counter, leases ended by release, by their TTL, or at once by their holder's exit.
 *
 * Only a lease's holder can release or extend it. The holder is the process the grant went to
 * (the transport tells the host who sent each frame), and it must name the lease's token. A
 * token that is not the current one is either the holder's own lease that ended since (its
 * release is a no-op, its extend `LEASE_EXPIRED`) or a guess (`FORBIDDEN`): to tell them apart
 * without remembering every lease, each grant carries a proof, an HMAC of (holder, name, token)
 * under a key only this table knows, that the client sends back.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Origin } from '../core/types.js';
import { BusError } from '../errors.js';
import { type Deadline, deadline } from '../util/duration.js';

/** What a granted acquire answers: the fencing token, the lease's end (epoch ms), its proof. */
export interface Grant {
  readonly t: number;
  readonly x: number;
  readonly k: string;
}

/** What a lease's holder sends to release or extend it: the lock, the token, the grant's proof. */
export interface LeaseClaim {
  readonly name: string;
  readonly origin: Origin;
  readonly token: number;
  readonly proof: string | undefined;
}

interface Lease {
  readonly token: number;
  readonly holder: Origin;
  /** The holder's acquire id, to match a late cancel. */
  readonly acquireId: number;
  expiresAt: number;
  timer: Deadline;
}

interface Waiter {
  readonly origin: Origin;
  readonly acquireId: number;
  readonly ttlMs: number;
  readonly resolve: (grant: Grant) => void;
  readonly reject: (error: BusError) => void;
  timer: Deadline | undefined;
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
  /** The key of the grants' proofs: random per table, never sent. */
  private readonly key = randomBytes(32);
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
   * drops the waiter. `ttlMs` and `waitMs` may be of any length (the host bounds them); the
   * timers are re-armed past Node's limit, never fire early.
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
      waiter.timer = deadline(() => this.drop(name, queue, waiter, timeout(name, waitMs)), waitMs);
      const s = signal();
      const onAbort = () =>
        this.drop(
          name,
          queue,
          waiter,
          new BusError('ABORTED', `lock '${name}': the caller gave up waiting`),
        );
      if (s.aborted) {
        waiter.timer.clear();
        reject(new BusError('ABORTED', `lock '${name}': the caller gave up waiting`));
        return;
      }
      s.addEventListener('abort', onAbort, { once: true });
      waiter.cleanup = () => s.removeEventListener('abort', onAbort);
      queue.waiters.push(waiter);
    });
  }

  /**
   * Releases the lease `claim` names, if it is still current, and grants the lock to the next
   * waiter. Returns whether it released (false: that lease had ended already).
   *
   * @throws {@link BusError} `FORBIDDEN` when the claim is not its holder's (another process, a
   *   wrong token, no or a wrong proof); nothing changes.
   */
  release(claim: LeaseClaim): boolean {
    const lock = this.held(claim, 'release');
    if (lock === undefined) return false;
    this.endLease(claim.name, lock);
    return true;
  }

  /**
   * Moves the expiry of the lease `claim` names to now + `ttlMs`; its token stays. Returns the
   * new expiry (epoch ms).
   *
   * @throws {@link BusError} `LEASE_EXPIRED` when that lease has ended (TTL, release, its holder
   *   gone); `FORBIDDEN` as {@link release}.
   */
  extend(claim: LeaseClaim, ttlMs: number): number {
    const lock = this.held(claim, 'extend');
    const lease = lock?.lease;
    if (lock === undefined || lease === undefined || lease.expiresAt <= this.now()) {
      // Past its end, a lease is over even if its timer has not run yet (a busy event loop).
      if (lock !== undefined) this.endLease(claim.name, lock);
      throw new BusError(
        'LEASE_EXPIRED',
        `lock '${claim.name}': lease ${claim.token} has ended (its ttlMs passed, or it was released); acquire the lock again`,
        { data: { lock: claim.name, token: claim.token } },
      );
    }
    lease.timer.clear();
    lease.expiresAt = this.now() + ttlMs;
    lease.timer = this.expiryTimer(claim.name, lock, lease.token, ttlMs);
    return lease.expiresAt;
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
      lock.lease?.timer.clear();
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
    const timer = this.expiryTimer(name, lock, token, ttlMs);
    lock.lease = { token, holder, acquireId, expiresAt, timer };
    this.onGrant();
    return { t: token, x: expiresAt, k: this.proof(holder, name, token) };
  }

  /** The timer that ends lease `token` of `lock` in `ttlMs`, unless it ended or moved since. */
  private expiryTimer(name: string, lock: Lock, token: number, ttlMs: number): Deadline {
    return deadline(() => {
      if (lock.lease?.token === token) this.endLease(name, lock);
    }, ttlMs);
  }

  /** The proof of lease `token` of lock `name` granted to `holder`: an HMAC under {@link key}. */
  private proof(holder: Origin, name: string, token: number): string {
    return createHmac('sha256', this.key)
      .update(`${String(holder)}:${name}:${token}`)
      .digest('base64url');
  }

  /**
   * The lock whose current lease `claim` names, held by the claimant; `undefined` when the claim
   * is genuine (its proof matches) but that lease has ended.
   *
   * @throws {@link BusError} `FORBIDDEN` for a claim on another process's lease, or one whose
   *   token was never granted to the claimant for this lock.
   */
  private held(claim: LeaseClaim, verb: 'release' | 'extend'): Lock | undefined {
    const lock = this.locks.get(claim.name);
    const lease = lock?.lease;
    if (lease?.token === claim.token && lease.holder === claim.origin) return lock;
    if (lease?.token !== claim.token && this.genuine(claim)) return undefined;
    const who = claim.origin === 'primary' ? 'the primary' : `worker ${claim.origin}`;
    throw new BusError(
      'FORBIDDEN',
      `${who} may not ${verb} lock '${claim.name}' with token ${claim.token}: it does not hold that lease`,
      { data: { lock: claim.name, token: claim.token, origin: claim.origin } },
    );
  }

  /** Whether `claim`'s proof is the one its grant carried. */
  private genuine(claim: LeaseClaim): boolean {
    if (claim.proof === undefined || claim.token > this.lastToken) return false;
    const expected = Buffer.from(this.proof(claim.origin, claim.name, claim.token));
    const given = Buffer.from(claim.proof);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** Ends the lease of `lock` and hands the lock to the first waiter, if any. */
  private endLease(name: string, lock: Lock): void {
    lock.lease?.timer.clear();
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
  w.timer?.clear();
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
