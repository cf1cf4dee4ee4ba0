/**
 * `clusterbus/keyv`: a Keyv storage adapter (keyv 6's storage contract) over a clusterbus store,
 * so Keyv, and the caching libraries built on it (cacheable, ...), share one cache across every
 * process of the cluster.
 *
 * ```ts
 * // contract: stores: { cache: z.unknown() }
 * const cache = new Keyv({ store: new ClusterKeyv(bus.store('cache')), namespace: 'users' });
 * ```
 *
 * Every operation is one store operation in the primary (one IPC round trip; the `…Many` ones
 * one per key, concurrently). Expiry is the store's TTL: an entry set with an expiry is removed
 * by the primary at that time and is absent for every reader after it.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import type { KeyvStorageAdapter, KeyvStorageCapability, KeyvStorageEntry } from 'keyv';
import { BusError } from '../errors.js';
import type { Store } from '../state/types.js';

/** Options of {@link ClusterKeyv}. */
export interface ClusterKeyvOptions {
  /**
   * The namespace of this adapter's keys (Keyv sets it to its own `namespace` option, when
   * given). `undefined`: no namespace, and `clear()` clears the whole store.
   * @default undefined
   */
  readonly namespace?: string;
  /**
   * Between the namespace and the key, in the store's keys (`<namespace><separator><key>`).
   * @default '::'
   */
  readonly namespaceSeparator?: string;
}

/** An `expires` below this (2001-09-09) is a relative ttl from an older Keyv, not an epoch. */
const MIN_EPOCH_MS = 1e12;

const METHODS = [
  'get',
  'getMany',
  'has',
  'hasMany',
  'set',
  'setMany',
  'delete',
  'deleteMany',
  'clear',
  'disconnect',
  'iterator',
] as const;

/**
 * A Keyv storage adapter over `bus.store(name)`, for a store whose schema accepts what Keyv
 * stores: `z.unknown()` (any Keyv serialization, `serialization: false` included), or
 * `z.string()` with Keyv's default JSON serialization. It declares keyv 6's `expires` capability,
 * so Keyv uses it directly and passes each entry's absolute expiry.
 *
 * Namespaces: Keyv's `namespace` is set on the adapter; keys are stored as
 * `<namespace>::<key>`, so namespaces sharing one store never see each other's keys, and
 * `clear()` removes only its namespace's keys (without a namespace: every key of the store).
 *
 * Errors: an operation rejects with the store's `BusError` (a key over 1,024 characters with its
 * namespace, `INVALID_ARGUMENT`; `STORE_FULL` past the store's `maxEntries`; `BAD_INPUT` for a
 * value the schema refuses; `TIMEOUT`, `CLOSED`); Keyv catches it and emits it on its own
 * `error` event (`get` resolves `undefined`, `set` `false`). The adapter is an `EventEmitter`
 * because Keyv's adapter contract asks for one (`on('error', …)`); it emits nothing itself.
 */
export class ClusterKeyv extends EventEmitter implements KeyvStorageAdapter {
  /** The namespace of this adapter's keys; Keyv sets it. */
  namespace: string | undefined;
  /** Between the namespace and the key. */
  readonly namespaceSeparator: string;

  /**
   * @param store - `bus.store(name)` (see the class's docs for its schema).
   * @param options - `namespace`, `namespaceSeparator` (default `'::'`).
   * @throws `BusError` `INVALID_ARGUMENT` for something that is not a store, or options of
   *   the wrong type.
   */
  constructor(
    private readonly store: Store<unknown, unknown>,
    options: ClusterKeyvOptions = {},
  ) {
    super();
    if (typeof store?.get !== 'function' || typeof store.keys !== 'function') {
      throw new BusError('INVALID_ARGUMENT', 'ClusterKeyv: pass bus.store(name)');
    }
    if (options.namespace !== undefined && typeof options.namespace !== 'string') {
      throw new BusError('INVALID_ARGUMENT', 'ClusterKeyv: namespace must be a string');
    }
    const separator = options.namespaceSeparator ?? '::';
    if (typeof separator !== 'string') {
      throw new BusError('INVALID_ARGUMENT', 'ClusterKeyv: namespaceSeparator must be a string');
    }
    this.namespace = options.namespace;
    this.namespaceSeparator = separator;
  }

  /** keyv 6's capability descriptor: every method, async, and absolute `expires` on `set`. */
  get capabilities(): KeyvStorageCapability {
    const methods = Object.fromEntries(
      METHODS.map((m) => [m, { exists: true, methodType: 'async' as const }]),
    ) as KeyvStorageCapability['methods'];
    return { compatible: true, store: 'keyvStorage', methods, expires: true };
  }

  async get<Value>(key: string): Promise<Value | undefined> {
    return (await this.store.get(this.key(key))) as Value | undefined;
  }

  async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    return Promise.all(keys.map((k) => this.get<Value>(k)));
  }

  async has(key: string): Promise<boolean> {
    return (await this.store.entry(this.key(key))) !== undefined;
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    return Promise.all(keys.map((k) => this.has(k)));
  }

  /**
   * Writes `value` at `key`, expiring at `expires` (ms since the epoch; the store's TTL is the
   * time left). An `expires` already past deletes the key. Resolves true.
   */
  async set(key: string, value: unknown, expires?: number): Promise<boolean> {
    const k = this.key(key);
    if (expires === undefined || expires === null) {
      await this.store.set(k, value);
      return true;
    }
    if (typeof expires !== 'number' || Number.isNaN(expires)) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `ClusterKeyv: expires must be a number, got ${String(expires)}`,
      );
    }
    // An older Keyv passes a relative ttl here, not an epoch: refuse it rather than delete.
    if (expires < MIN_EPOCH_MS) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `ClusterKeyv: set() got ${expires}, not an expiry in ms since the epoch: it needs keyv 6's storage contract (keyv >= 6.1), whose Keyv passes absolute expiries`,
      );
    }
    const ttlMs = expires - Date.now();
    if (ttlMs <= 0) {
      await this.store.delete(k);
      return true;
    }
    await this.store.set(k, value, Number.isFinite(ttlMs) ? { ttlMs } : {});
    return true;
  }

  async setMany<Value>(entries: KeyvStorageEntry<Value>[]): Promise<boolean[]> {
    return Promise.all(entries.map((e) => this.set(e.key, e.value, e.expires)));
  }

  async delete(key: string): Promise<boolean> {
    return this.store.delete(this.key(key));
  }

  async deleteMany(keys: string[]): Promise<boolean[]> {
    return Promise.all(keys.map((k) => this.delete(k)));
  }

  /**
   * Deletes this namespace's keys (without a namespace: every key of the store): one `keys` and a
   * `delete` per key, so a key written meanwhile may survive it.
   */
  async clear(): Promise<void> {
    const keys = await this.store.keys({ prefix: this.prefix() });
    await Promise.all(keys.map((k) => this.store.delete(k)));
  }

  /** Yields `[key, value]` for each key of this namespace (without its prefix), in key order. */
  async *iterator<Value>(): AsyncGenerator<Array<string | Awaited<Value> | undefined>, void> {
    const prefix = this.prefix();
    for (const k of await this.store.keys({ prefix })) {
      const value = (await this.store.get(k)) as Awaited<Value> | undefined;
      if (value !== undefined) yield [k.slice(prefix.length), value];
    }
  }

  /** Node's `listeners()`, typed as Keyv's adapter contract (hookified's emitter) has it. */
  override listeners(event: string | symbol): Array<(...args: unknown[]) => void> {
    return super.listeners(event) as Array<(...args: unknown[]) => void>;
  }

  /** Node's `rawListeners()`, typed as Keyv's adapter contract has it. */
  override rawListeners(event: string | symbol): Array<(...args: unknown[]) => void> {
    return super.rawListeners(event) as Array<(...args: unknown[]) => void>;
  }

  /** Nothing to do: the bus is the app's, closed with it. */
  async disconnect(): Promise<void> {}

  private prefix(): string {
    return this.namespace ? `${this.namespace}${this.namespaceSeparator}` : '';
  }

  private key(key: string): string {
    return `${this.prefix()}${key}`;
  }
}
