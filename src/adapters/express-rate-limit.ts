/**
 * `clusterbus/express-rate-limit`: a `Store` for express-rate-limit 8 over a clusterbus store of
 * numbers, so that a limit holds for the whole cluster, not per worker.
 *
 * ```ts
 * // contract: stores: { rateLimit: z.number() }
 * app.use(rateLimit({ windowMs: 60_000, limit: 100, store: new ClusterStore(bus.store('rateLimit')) }));
 * ```
 *
 * Each hit is one atomic `increment` in the primary (one IPC round trip): the counter of a key is
 * created with a TTL of `windowMs` and keeps that expiry while it is incremented (a fixed
 * window), and the increment's answer carries the entry's expiry, which is the window's reset
 * time. The count is exact across every process of the cluster: N hits from any mix of workers
 * give the values 1..N, and the entry expires once, for everyone, at the window's end.
 *
 * @module
 */
import type { ClientRateLimitInfo, Options, Store } from 'express-rate-limit';
import { BusError } from '../errors.js';
import { incrementEntry } from '../state/store.js';
import type { CounterStore, IncrementOptions, StoreEntry } from '../state/types.js';

/** Options of {@link ClusterStore}. */
export interface ClusterStoreOptions {
  /**
   * Prepended to every key in the clusterbus store. Give each rate limiter that shares the store
   * its own prefix, or their counts add up.
   * @default 'rl:'
   */
  readonly prefix?: string;
}

/** A clusterbus store proxy whose increment can also answer with the entry (internal). */
type WithEntry = CounterStore<number, number> & {
  [incrementEntry]?: (key: string, by: number, o: IncrementOptions) => Promise<StoreEntry<number>>;
};

/**
 * An express-rate-limit 8 `Store` over `bus.store(name)` for a store of numbers
 * (`stores: { rateLimit: z.number() }` in the contract), the same in every worker (and in the
 * primary). One instance per rate limiter (express-rate-limit refuses to share one), each with
 * its own `prefix` when several limiters use one store.
 *
 * Its operations reject with the store's `BusError`s (`TIMEOUT`, `CLOSED`, `STORE_FULL` past the
 * store's `maxEntries`: every client key is an entry while its window lasts); express-rate-limit
 * then passes the error to `next()`, or lets the request through with `passOnStoreError`.
 */
export class ClusterStore implements Store {
  /** Prepended to every key (see {@link ClusterStoreOptions.prefix}). */
  readonly prefix: string;
  /** Keys are shared by every process of the cluster: express-rate-limit's double-count check. */
  readonly localKeys = false;
  private windowMs: number | undefined;

  /**
   * @param store - `bus.store(name)` of a store whose schema is a number (`z.number()`).
   * @param options - `prefix` (default `'rl:'`).
   * @throws `BusError` `INVALID_ARGUMENT` for something that is not a store of numbers, or a
   *   prefix that is not a string.
   */
  constructor(
    private readonly store: CounterStore<number, number>,
    options: ClusterStoreOptions = {},
  ) {
    if (typeof store?.increment !== 'function' || typeof store.entry !== 'function') {
      throw new BusError(
        'INVALID_ARGUMENT',
        'ClusterStore: pass bus.store(name) of a store of numbers (z.number() in the contract)',
      );
    }
    const prefix = options.prefix ?? 'rl:';
    if (typeof prefix !== 'string') {
      throw new BusError('INVALID_ARGUMENT', 'ClusterStore: prefix must be a string');
    }
    this.prefix = prefix;
  }

  /** Called by express-rate-limit with its options: takes `windowMs`, the counters' TTL. */
  init(options: Options): void {
    const windowMs = options.windowMs;
    if (typeof windowMs !== 'number' || !Number.isFinite(windowMs) || windowMs <= 0) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `ClusterStore: windowMs must be a finite number of ms > 0, got ${String(windowMs)}`,
      );
    }
    this.windowMs = windowMs;
  }

  /**
   * Counts a hit of `key`, atomically for the whole cluster: resolves with the hits of the
   * current window (this one included) and the window's end.
   */
  async increment(key: string): Promise<ClientRateLimitInfo> {
    const e = await this.add(key, 1);
    // A decrement racing a window's start may leave a counter at 0: a hit is at least one.
    return { totalHits: Math.max(1, e.value), resetTime: this.resetTime(e) };
  }

  /** Takes back a hit of `key` (express-rate-limit's `skipSuccessfulRequests`, `skipFailedRequests`). */
  async decrement(key: string): Promise<void> {
    const e = await this.add(key, -1);
    // It created the counter (the window ended meanwhile): remove it, unless someone counted since.
    if (e.value < 0) {
      await this.store.delete(this.prefix + key, { ifRevision: e.revision }).catch((error) => {
        if (!(error instanceof BusError && error.code === 'CONFLICT')) throw error;
      });
    }
  }

  /** The hits and reset time of `key`'s current window, or `undefined` when it has none. */
  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const e = await this.store.entry(this.prefix + key);
    return e === undefined ? undefined : { totalHits: e.value, resetTime: this.resetTime(e) };
  }

  /** Ends `key`'s window: its next hit starts a new one. */
  async resetKey(key: string): Promise<void> {
    await this.store.delete(this.prefix + key);
  }

  /**
   * Ends every window of this prefix (a `keys` then one `delete` per key: a hit counted meanwhile
   * may survive it).
   */
  async resetAll(): Promise<void> {
    const keys = await this.store.keys({ prefix: this.prefix });
    await Promise.all(keys.map((k) => this.store.delete(k)));
  }

  private async add(key: string, by: number): Promise<StoreEntry<number>> {
    const windowMs = this.windowMs;
    if (windowMs === undefined) {
      throw new BusError(
        'INVALID_ARGUMENT',
        'ClusterStore: not initialized; pass it to rateLimit({ store }), which calls init()',
      );
    }
    if (typeof key !== 'string') {
      throw new BusError('INVALID_ARGUMENT', 'ClusterStore: the key must be a string');
    }
    const options = { ttlMs: windowMs };
    const store = this.store as WithEntry;
    const withEntry = store[incrementEntry];
    if (withEntry !== undefined) return withEntry.call(store, this.prefix + key, by, options);
    // Another CounterStore (a wrapper): two round trips, the window's end read after.
    const value = await store.increment(this.prefix + key, by, options);
    const entry = await store.entry(this.prefix + key);
    return entry ?? { value, revision: 0 };
  }

  private resetTime(e: StoreEntry<number>): Date {
    return new Date(e.expiresAt ?? Date.now() + (this.windowMs ?? 0));
  }
}
