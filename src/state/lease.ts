/**
 * The client side of cluster-wide locks (`bus.lock`): one acquire call to the primary's lock
 * table, a cancel when this side gives up, and the {@link Lease} it resolves with.
 *
 * @module
 */
import type { BaseBus } from '../bus/base.js';
import type { Contract } from '../contract.js';
import { BusError } from '../errors.js';
import { checkKey, checkOptions, optionalMs } from './args.js';
import { clientOf, type StateClient } from './client.js';
import { MAX_TIMER_MS, Op, parseWire, Res } from './protocol.js';
import type { Lease, LockOptions, StoreCallOptions } from './types.js';

/** Default `ttlMs` of a lease, in ms. */
export const DEFAULT_LOCK_TTL_MS = 30_000;
/** Default `waitMs` of `lock`, in ms. */
export const DEFAULT_LOCK_WAIT_MS = 30_000;
/** How long past `waitMs` a lock caller waits for the primary's own answer, in ms. */
const LOCK_ANSWER_GRACE_MS = 5_000;

/** A lease granted by the primary's lock table. */
class LeaseHandle implements Lease {
  private ended = false;

  constructor(
    private readonly client: StateClient,
    readonly name: string,
    readonly token: number,
    readonly expiresAt: number,
  ) {}

  async release(): Promise<boolean> {
    if (this.ended) return false;
    this.ended = true;
    try {
      return parseWire(
        Res.release,
        await this.client.call(Op.release, { n: this.name, t: this.token }),
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

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/**
 * @internal Acquires lock `name` for `bus`'s process. See `BaseBus.lock`.
 */
export async function acquireLock<C extends Contract>(
  bus: BaseBus<C>,
  name: string,
  options: LockOptions = {},
): Promise<Lease> {
  checkKey(name, 'lock', 'name');
  checkOptions(options, 'lock');
  const ttl = optionalMs(options.ttlMs, 'lock', 'ttlMs') ?? DEFAULT_LOCK_TTL_MS;
  const wait = options.waitMs ?? DEFAULT_LOCK_WAIT_MS;
  if (typeof wait !== 'number' || !(wait >= 0) || wait > MAX_TIMER_MS) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `lock: waitMs must be a number of ms >= 0 and <= ${MAX_TIMER_MS}, got ${String(wait)}`,
    );
  }
  const client = clientOf(bus as unknown as BaseBus<Contract>);
  const a = client.acquireId();
  const callOptions: StoreCallOptions = {
    timeoutMs: Math.min(MAX_TIMER_MS, wait + LOCK_ANSWER_GRACE_MS),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  };
  let grant: { t: number; x: number };
  try {
    grant = parseWire(
      Res.acquire,
      await client.call(Op.acquire, { n: name, a, ttl, wait }, callOptions),
      'PROTOCOL',
      'lock acquire',
    );
  } catch (error) {
    // This side gave up (abort, timeout): the host drops the waiter, or frees a lease granted
    // meanwhile, so a lock is never left held by nobody.
    const code = error instanceof BusError ? error.code : undefined;
    if (code !== 'LOCK_TIMEOUT' && code !== 'INVALID_ARGUMENT' && code !== 'CLOSED') {
      client.notify(Op.cancel, { n: name, a });
    }
    throw error;
  }
  return new LeaseHandle(client, name, grant.t, grant.x);
}
