/**
 * Both sides: cluster-wide locks as a process asks for them (`bus.lock`), the same in the hub and
 * in workers: one acquire call to the hub's lock table (lock.ts) through the process's state
 * client, a cancel when this side gives up, and the {@link Lease} it resolves with.
 *
 * @module
 */
import { BusError } from '../errors.js';
import { checkDurationMs, MAX_TIMER_MS } from '../util/duration.js';
import { checkKey, checkOptions } from './args.js';
import type { StateClient } from './client.js';
import { parseWire, Res, Verb } from './protocol.js';
import type { Lease, LockOptions, StoreCallOptions } from './types.js';

/** Default `ttlMs` of a lease, in ms. */
export const DEFAULT_LOCK_TTL_MS = 30_000;
/** Default `waitMs` of `lock`, in ms. */
export const DEFAULT_LOCK_WAIT_MS = 30_000;
/**
 * Lock names starting with this are clusterbus's own (`$singleton.<name>`, bus.singleton's):
 * `bus.lock` refuses them, so an app's locks never collide with them.
 */
export const RESERVED_LOCK_PREFIX = '$';
/** How long past `waitMs` a lock caller waits for the primary's own answer, in ms. */
const LOCK_ANSWER_GRACE_MS = 5_000;

/** A lease granted by the primary's lock table. */
class LeaseHandle implements Lease {
  private ended = false;
  private expiry: number;

  constructor(
    private readonly client: StateClient,
    readonly name: string,
    readonly token: number,
    expiresAt: number,
    /** The grant's proof of ownership, sent back with release and extend (see lock.ts). */
    private readonly proof: string,
  ) {
    this.expiry = expiresAt;
  }

  get expiresAt(): number {
    return this.expiry;
  }

  async release(): Promise<boolean> {
    if (this.ended) return false;
    this.ended = true;
    try {
      return parseWire(
        Res.release,
        await this.client.call(Verb.release, { n: this.name, t: this.token, k: this.proof }),
        'PROTOCOL',
        'lock release',
      );
    } catch (error) {
      // A closed bus: the host ended the lease with this process's bus (or its own close).
      if (error instanceof BusError && error.code === 'CLOSED') return false;
      this.ended = false;
      throw error;
    }
  }

  async extend(ttlMs: number): Promise<number> {
    const ttl = checkDurationMs(ttlMs, 'extend: ttlMs');
    if (this.ended) throw this.expired('it was released');
    let x: number;
    try {
      x = parseWire(
        Res.extend,
        await this.client.call(Verb.extend, { n: this.name, t: this.token, k: this.proof, ttl }),
        'PROTOCOL',
        'lock extend',
      ).x;
    } catch (error) {
      const code = error instanceof BusError ? error.code : undefined;
      if (code === 'LEASE_EXPIRED') this.ended = true;
      // This process's bus is closed, or its channel to the primary is gone: the primary ended
      // the lease with it.
      if (code === 'CLOSED' || code === 'TARGET_EXITED') {
        this.ended = true;
        throw this.expired('this process lost its link to the primary', error);
      }
      throw error;
    }
    this.expiry = x;
    return x;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  private expired(why: string, cause?: unknown): BusError {
    return new BusError(
      'LEASE_EXPIRED',
      `lock '${this.name}': lease ${this.token} has ended (${why}); acquire the lock again`,
      { cause, data: { lock: this.name, token: this.token } },
    );
  }
}

/**
 * @internal Acquires lock `name` for `client`'s process. See `StateApi.lock`. `reserved`: a
 * name of clusterbus's own namespace ({@link RESERVED_LOCK_PREFIX}) is allowed.
 */
export async function acquireLock(
  client: StateClient,
  name: string,
  options: LockOptions = {},
  reserved = false,
): Promise<Lease> {
  checkKey(name, 'lock', 'name');
  if (!reserved && name.startsWith(RESERVED_LOCK_PREFIX)) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `lock: names starting with '${RESERVED_LOCK_PREFIX}' are reserved for clusterbus (bus.singleton holds '$singleton.<name>'), got '${name}'`,
    );
  }
  checkOptions(options, 'lock');
  const ttl = checkDurationMs(options.ttlMs ?? DEFAULT_LOCK_TTL_MS, 'lock: ttlMs');
  const wait = checkDurationMs(options.waitMs ?? DEFAULT_LOCK_WAIT_MS, 'lock: waitMs', {
    zero: true,
  });
  const a = client.acquireId();
  const callOptions: StoreCallOptions = {
    timeoutMs: Math.min(MAX_TIMER_MS, wait + LOCK_ANSWER_GRACE_MS),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  };
  let grant: { t: number; x: number; k: string };
  try {
    grant = parseWire(
      Res.acquire,
      await client.call(Verb.acquire, { n: name, a, ttl, wait }, callOptions),
      'PROTOCOL',
      'lock acquire',
    );
  } catch (error) {
    // This side gave up (abort, timeout): the host drops the waiter, or frees a lease granted
    // meanwhile, so a lock is never left held by nobody.
    const code = error instanceof BusError ? error.code : undefined;
    if (code !== 'LOCK_TIMEOUT' && code !== 'INVALID_ARGUMENT' && code !== 'CLOSED') {
      client.notify(Verb.cancel, { n: name, a });
    }
    throw error;
  }
  return new LeaseHandle(client, name, grant.t, grant.x, grant.k);
}
