/**
 * Both sides: the public shapes of shared state, store entries, changes, options, the `Store`
 * proxy, locks and their leases, the state extension's API, and the options of the hub's store
 * host.
 *
 * @module
 */
import type { Contract, StoreInput, StoreName, StoreValue } from '../contract.js';

/** One entry of a store, as a reader sees it. @category Shared state */
export interface StoreEntry<V> {
  /** The value, parsed by the store's schema in the reading process. */
  readonly value: V;
  /** The revision of the change that last wrote this entry (per store, strictly increasing). */
  readonly revision: number;
  /** When the entry expires, in ms since the epoch by the primary's clock; absent: never. */
  readonly expiresAt?: number;
}

/** A change delivered to a watcher: a write, a delete, or a TTL expiry. @category Shared state */
export type StoreChange<V> =
  | {
      /** The key that changed. */
      readonly key: string;
      /** `set`: written by `set`, `increment` or `update` (or present when an `initial` watch began). */
      readonly op: 'set';
      /** The new value, parsed by the store's schema in the watching process. */
      readonly value: V;
      /** The change's revision. */
      readonly revision: number;
    }
  | {
      /** The key that changed. */
      readonly key: string;
      /** `delete`: removed by `delete`; `expire`: removed because its TTL passed. */
      readonly op: 'delete' | 'expire';
      /** Always absent. */
      readonly value?: undefined;
      /** The change's revision. */
      readonly revision: number;
    };

/** Options every store operation takes. @category Shared state */
export interface StoreCallOptions {
  /**
   * Reject with `TIMEOUT` if the primary has not answered within this many ms.
   * @default the bus's `callTimeoutMs` (30_000)
   */
  readonly timeoutMs?: number;
  /** Aborting it rejects the operation with `ABORTED` (it may still have been applied). */
  readonly signal?: AbortSignal;
}

/** Options of {@link Store.set}. @category Shared state */
export interface SetOptions extends StoreCallOptions {
  /**
   * The entry expires this many ms after the write (its watchers see `expire`). Absent: the
   * entry never expires (a previous TTL is cleared: `set` replaces the whole entry).
   */
  readonly ttlMs?: number;
  /**
   * Compare-and-set: write only if the entry's revision is this one (`0`: only if the key does
   * not exist); otherwise reject with `CONFLICT` and change nothing.
   */
  readonly ifRevision?: number;
}

/** Options of {@link CounterStore.increment}. @category Shared state */
export interface IncrementOptions extends StoreCallOptions {
  /**
   * When the increment creates the entry, it expires this many ms later; an existing entry keeps
   * its expiry (a fixed-window counter). Absent: a created entry never expires.
   */
  readonly ttlMs?: number;
}

/** Options of {@link Store.update}. @category Shared state */
export interface UpdateOptions extends StoreCallOptions {
  /** As {@link SetOptions.ttlMs}, for the value written. */
  readonly ttlMs?: number;
  /**
   * At most this many compare-and-set attempts (with a short random backoff between them);
   * after that, reject with `CONFLICT`.
   * @default 64
   */
  readonly maxAttempts?: number;
}

/** Options of {@link Store.delete}. @category Shared state */
export interface DeleteOptions extends StoreCallOptions {
  /** Delete only if the entry's revision is this one; otherwise reject with `CONFLICT`. */
  readonly ifRevision?: number;
}

/** Options of {@link Store.keys}. @category Shared state */
export interface KeysOptions extends StoreCallOptions {
  /** Only the keys that start with this string. */
  readonly prefix?: string;
}

/**
 * What a watch sees. Give at most one of `key` and `prefix`; neither: every key.
 * @category Shared state
 */
export interface WatchOptions {
  /** Only changes of this key. */
  readonly key?: string;
  /** Only changes of keys that start with this string (at most 1,024 characters; `''`: every key). */
  readonly prefix?: string;
  /**
   * First deliver every matching entry as a `set` change (oldest revision first), then the live
   * changes: snapshot then updates, with nothing missed in between.
   * @default false
   */
  readonly initial?: boolean;
}

/**
 * A running watch: call it to stop the watch (idempotent). `ready` resolves, with the store's
 * revision at that moment, once the primary has registered the watch: every change with a higher
 * revision will be delivered. If registering fails, `ready` rejects with the BusError and the
 * watch ends; the failure is also reported on the bus's `error` event (unless it is `CLOSED`:
 * a closing bus ends its watches anyway). `LIMIT_EXCEEDED` (`data: { limit:
 * 'maxWatchesPerProcess', value }`): this process already has `maxWatchesPerProcess` watches.
 * @category Shared state
 */
export type Watch = (() => void) & { readonly ready: Promise<number> };

/**
 * A typed key-value store held by the primary, reachable from every process of the cluster in
 * one IPC round trip. `I` is what writers pass (zod's input type of the store's schema), `O` what
 * readers get (its output type). Every operation rejects (never throws synchronously) with a
 * {@link BusError}: besides the codes listed per method, `TIMEOUT`, `ABORTED`, `CLOSED` (the bus
 * is closed), `INVALID_ARGUMENT` (a bad key or option: keys are non-empty strings of at most
 * 1,024 characters) and, from a worker, `TARGET_EXITED` (the channel to the primary closed).
 *
 * Values are validated by the store's schema when written (in the primary, before anything
 * changes: `BAD_INPUT` with zod's `issues`) and when read (in the reading process: `BAD_OUTPUT`).
 * The primary applies operations one at a time, in arrival order.
 * @category Shared state
 */
export interface Store<I, O> {
  /** The store's name in the contract. */
  readonly name: string;

  /** The value of `key`, or `undefined` if there is none (or it has expired). Rejects `BAD_OUTPUT`. */
  get(key: string, options?: StoreCallOptions): Promise<O | undefined>;

  /**
   * The entry of `key` (`{ value, revision, expiresAt? }`), or `undefined` if there is none.
   * Rejects `BAD_OUTPUT`.
   */
  entry(key: string, options?: StoreCallOptions): Promise<StoreEntry<O> | undefined>;

  /**
   * Writes `value` at `key` and resolves with the change's revision.
   *
   * @throws never synchronously; rejects with `BAD_INPUT` (the value fails the schema),
   *   `CONFLICT` (`ifRevision` did not match), `STORE_FULL` (a new key past `maxEntries`); in
   *   every case nothing changed.
   */
  set(key: string, value: I, options?: SetOptions): Promise<number>;

  /**
   * Read-modify-write: reads the entry, calls `fn` in this process with its value (`undefined` if
   * none), and writes the result with a compare-and-set on the revision read; when another write
   * came first, calls `fn` again with the newer entry, up to `maxAttempts` times. Resolves with
   * the entry written. `fn` may be async; what it throws rejects `update` as it is.
   *
   * @throws never synchronously; rejects with `CONFLICT` (still contended after `maxAttempts`),
   *   `BAD_INPUT`, `BAD_OUTPUT`, `STORE_FULL`.
   */
  update(
    key: string,
    fn: (current: O | undefined, entry: StoreEntry<O> | undefined) => I | Promise<I>,
    options?: UpdateOptions,
  ): Promise<StoreEntry<O>>;

  /**
   * Deletes `key`. Resolves true if an entry was deleted (a change, with a revision), false if
   * there was none.
   *
   * @throws never synchronously; rejects with `CONFLICT` when `ifRevision` did not match.
   */
  delete(key: string, options?: DeleteOptions): Promise<boolean>;

  /** The keys (of live entries), sorted; only those starting with `prefix` if given. */
  keys(options?: KeysOptions): Promise<string[]>;

  /**
   * Watches every key's changes (see {@link WatchOptions}). `onChange` is called in this process,
   * in revision order, with each value parsed by the schema (a value that fails it is reported on
   * the bus's `error` event as `BAD_OUTPUT` and skipped; a callback that throws is reported as
   * `SUBSCRIBER_FAILED`). A process's own write is seen before that write's promise resolves.
   *
   * @returns a {@link Watch}: call it to stop.
   * @throws {@link BusError} (synchronously) `CLOSED` on a closed bus, `INVALID_ARGUMENT` for bad
   *   options or a callback that is not a function.
   */
  watch(onChange: (change: StoreChange<O>) => void): Watch;
  /**
   * Watches the changes of one `key`, or of the keys starting with `prefix`; with
   * `initial: true`, first the current entries (oldest revision first), then live changes.
   * Otherwise as the overload without options.
   *
   * @returns a {@link Watch}: call it to stop.
   * @throws {@link BusError} (synchronously) `CLOSED`, `INVALID_ARGUMENT` (both `key` and
   *   `prefix`, or a callback that is not a function).
   */
  watch(options: WatchOptions, onChange: (change: StoreChange<O>) => void): Watch;
}

/**
 * A store whose values are numbers: a {@link Store} with an atomic `increment`.
 * @category Shared state
 */
export interface CounterStore<I, O> extends Store<I, O> {
  /**
   * Adds `by` to the value of `key` atomically (a missing key starts at 0) and resolves with the
   * new value. The result is validated by the store's schema.
   *
   * @param by - a finite number, may be negative. @default 1
   * @throws never synchronously; rejects with `INVALID_ARGUMENT` (the stored value or the store
   *   is not a number), `BAD_INPUT` (the new value fails the schema, e.g. its `max`),
   *   `STORE_FULL` (a new key past `maxEntries`); in every case nothing changed.
   */
  increment(key: string, by?: number, options?: IncrementOptions): Promise<number>;
}

/**
 * What `bus.store(name)` returns for store `S` of contract `C`: a {@link CounterStore} when its
 * values are numbers (input and output), else a {@link Store} (so `increment` is a type error).
 * @category Shared state
 */
export type StoreOf<C extends Contract, S extends StoreName<C>> = [StoreInput<C, S>] extends [
  number,
]
  ? [StoreValue<C, S>] extends [number]
    ? CounterStore<StoreInput<C, S>, StoreValue<C, S>>
    : Store<StoreInput<C, S>, StoreValue<C, S>>
  : Store<StoreInput<C, S>, StoreValue<C, S>>;

/**
 * The state extension's API, on the primary's bus and on every worker's (`bus.store(name)`,
 * `bus.lock(name, options)`), put there by the composition roots.
 * @category Shared state
 */
export interface StateApi<C extends Contract> {
  /**
   * The shared store `name` of the contract: a typed key-value store held by the primary, the
   * same API in every process (`get`, `entry`, `set`, `update`, `delete`, `keys`, `watch`, and
   * `increment` for a store of numbers): see `Store`. One proxy per name.
   *
   * @throws {@link BusError} `INVALID_ARGUMENT` (synchronously) for a name not in the contract.
   */
  store<S extends StoreName<C>>(name: S): StoreOf<C, S>;
  /**
   * Acquires the cluster-wide lock `name` and resolves with its {@link Lease} (`token`, a fencing
   * token; `release()`, `extend()`). Waiters are served first come, first served; a lease ends on
   * `release()`, after `ttlMs` (default 30_000 ms), or at once when its process exits.
   *
   * @param name - at most 1,024 characters; names starting with `$` are clusterbus's own
   *   (`bus.singleton` holds `$singleton.<name>`) and are refused with `INVALID_ARGUMENT`.
   * @param options - `ttlMs` (default 30_000), `waitMs` (default 30_000; 0: try once), `signal`.
   * @throws never synchronously; rejects with {@link BusError} `LOCK_TIMEOUT` (not granted
   *   within `waitMs`), `ABORTED`, `CLOSED`, `INVALID_ARGUMENT`, or `TIMEOUT` when the primary
   *   does not answer at all.
   */
  lock(name: string, options?: LockOptions): Promise<Lease>;
}

/** Options of `bus.lock`. @category Shared state */
export interface LockOptions {
  /**
   * The lease ends by itself this many ms after it was granted, if not released (or extended)
   * first. At most 2_147_483_647 (Node's timer limit, about 24.8 days; more: `INVALID_ARGUMENT`):
   * keep it short and `extend()` a lease you still need, so a holder that hangs is taken over soon.
   * @default 30_000
   */
  readonly ttlMs?: number;
  /**
   * Reject with `LOCK_TIMEOUT` if the lock is not granted within this many ms (`0`: try once).
   * At most 2_147_483_647 (more: `INVALID_ARGUMENT`).
   * @default 30_000
   */
  readonly waitMs?: number;
  /** Aborting it while waiting rejects with `ABORTED` and leaves the queue (never a leaked lease). */
  readonly signal?: AbortSignal;
}

/**
 * A granted lock. Mutual exclusion holds until `release()`, the end of its TTL, or the exit of
 * the holding process (released at once). Not re-entrant: the same process locking the same
 * name again waits like anyone else.
 * @category Shared state
 */
export interface Lease {
  /** The lock's name. */
  readonly name: string;
  /**
   * The fencing token: strictly greater than every token granted before it, by any lock of the
   * cluster. Pass it to the resource you protect so it can refuse a stale holder's writes.
   */
  readonly token: number;
  /**
   * When the lease ends by itself, in ms since the epoch by the primary's clock. Moves when
   * {@link Lease.extend} resolves.
   */
  readonly expiresAt: number;
  /**
   * Releases the lock; waiters are served in FIFO order. Idempotent: resolves true if this call
   * released it, false if it had already ended (released, expired, its process's bus closed).
   * Rejects only with `TIMEOUT` or `TARGET_EXITED` (the primary did not answer). Only the holding
   * process can release a lease: the primary refuses anyone else with `FORBIDDEN`.
   */
  release(): Promise<boolean>;
  /**
   * Renews the lease before it ends: resolves, with the new {@link Lease.expiresAt} (epoch ms),
   * once the primary has moved the lease's end to now + `ttlMs`. The fencing token does not
   * change. Call it well before `expiresAt` (e.g. every `ttlMs / 3`): a lease that has ended
   * cannot be renewed.
   *
   * @param ttlMs - the lease's new time to live from now, in ms: > 0 and at most 2_147_483_647.
   * @throws never synchronously; rejects with {@link BusError} `LEASE_EXPIRED` when the lease
   *   has ended (its TTL passed, it was released, or this process lost its link to the primary
   *   or closed its bus), `INVALID_ARGUMENT` for a bad `ttlMs`, `TIMEOUT` when the primary does
   *   not answer (the lease may or may not have been extended).
   */
  extend(ttlMs: number): Promise<number>;
  /** Same as {@link Lease.release}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Snapshot persistence of every store (see `startCluster({ persist })`). @category Shared state */
export interface PersistOptions {
  /**
   * The snapshot file. At start, its directory is created, the temporary files a killed primary
   * left there (`<file>.<id>.tmp`) are removed, and the file is loaded (missing: an empty start;
   * unreadable, corrupt, or a directory that cannot be written: `startCluster` rejects with
   * `PERSIST_FAILED`, before any fork). Written atomically (a temporary file, then a rename),
   * every `intervalMs` when something changed and when the cluster closes; a snapshot that fails
   * is reported and retried at the next interval, and a last one that fails makes `app.close()`
   * reject with `PERSIST_FAILED`.
   */
  readonly file: string;
  /**
   * How often to write the snapshot when something changed, in ms.
   * @default 1_000
   */
  readonly intervalMs?: number;
}

/** Limits of one store. @category Shared state */
export interface StoreLimits {
  /**
   * At most this many entries: past it, a write of a new key rejects with `STORE_FULL` and
   * nothing changes.
   * @default 10_000
   */
  readonly maxEntries?: number;
}

/** Options of the primary's store host (`startCluster({ store })`). @category Shared state */
export interface StoreHostOptions<C extends Contract = Contract> {
  /**
   * The default `maxEntries` of every store.
   * @default 10_000
   */
  readonly maxEntries?: number;
  /**
   * The most watches one process (a worker, or the primary) may have registered at once, over
   * every store. Past it, a new watch's `ready` rejects with `LIMIT_EXCEEDED`
   * (`data: { limit: 'maxWatchesPerProcess', value }`) and nothing is registered.
   * @default 10_000
   */
  readonly maxWatchesPerProcess?: number;
  /** Per-store limits, by store name, over the default. */
  readonly limits?: { readonly [S in StoreName<C>]?: StoreLimits };
}
