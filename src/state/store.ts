/**
 * Both sides: the proxy of one store (`bus.store(name)`), the same in the hub and in workers.
 * Every operation is one call to the hub's host through the process's state client (client.ts);
 * what comes back is validated here with the store's schema.
 *
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Schema } from '../contract.js';
import { BusError, summarizeIssues, toIssues } from '../errors.js';
import { checkCount } from '../util/count.js';
import { sleep } from '../util/sleep.js';
import {
  checkKey,
  checkOptions,
  checkPrefix,
  defined,
  optionalMs,
  optionalRevision,
} from './args.js';
import { parseWire, Res, Verb, type WireEntry } from './protocol.js';
import type {
  CounterStore,
  DeleteOptions,
  IncrementOptions,
  KeysOptions,
  SetOptions,
  StoreCallOptions,
  StoreChange,
  StoreEntry,
  UpdateOptions,
  Watch,
  WatchOptions,
} from './types.js';

/**
 * @internal The key of a store proxy's increment that resolves with the entry written (value,
 * revision, expiry): `store[incrementEntry](key, by, options)`.
 */
export const incrementEntry: unique symbol = Symbol('clusterbus.incrementEntry');

/** Default `maxAttempts` of `update`. */
export const DEFAULT_UPDATE_ATTEMPTS = 64;
/** The longest backoff between two `update` attempts, in ms. */
const MAX_BACKOFF_MS = 100;

/** One watch of this process: its store and its callback. */
export interface WatchEntry {
  readonly store: StoreClient;
  readonly onChange: (change: StoreChange<unknown>) => void;
}

/** What a store proxy needs of its process's state client (client.ts). */
export interface StoreBackend {
  /** Whether the bus is closed: a new watch throws `CLOSED`. */
  readonly isClosed: boolean;
  /** This process's watches, by id. */
  readonly watches: Map<number, WatchEntry>;
  /** The last queued `update` of each store and key in this process, to run them one by one. */
  readonly lanes: Map<string, Promise<void>>;
  /** A watch id, unique in this process. */
  watchId(): number;
  /** Calls `$state.<verb>` on the hub. */
  call(verb: string, input: unknown, options?: StoreCallOptions): Promise<unknown>;
  /** Sends the one-way message `$state.<verb>` to the hub. */
  notify(verb: string, payload: unknown): void;
  /** Reports what has nobody to reject. */
  report(error: BusError): void;
}

/** The proxy of one store, in one process. Implements every method; `StoreOf` picks the type. */
export class StoreClient implements CounterStore<unknown, unknown> {
  constructor(
    private readonly client: StoreBackend,
    readonly name: string,
    readonly schema: Schema,
  ) {}

  async get(key: string, options?: StoreCallOptions): Promise<unknown> {
    return (await this.entry(key, options))?.value;
  }

  async entry(key: string, options?: StoreCallOptions): Promise<StoreEntry<unknown> | undefined> {
    const raw = await this.rawEntry(key, options);
    return raw === null ? undefined : this.toEntry(key, raw);
  }

  async set(key: string, value: unknown, options: SetOptions = {}): Promise<number> {
    checkKey(key, 'set');
    checkOptions(options, 'set');
    const ttl = optionalMs(options.ttlMs, 'set', 'ttlMs');
    const ifRevision = optionalRevision(options.ifRevision, 'set');
    const res = await this.sendSet(key, value, ttl, ifRevision, options, 'store set');
    if (!res.ok) throw this.conflict(key, ifRevision ?? 0, res.cur);
    return res.r;
  }

  async increment(key: string, by = 1, options: IncrementOptions = {}): Promise<number> {
    return (await this[incrementEntry](key, by, options)).value;
  }

  /**
   * @internal As {@link increment}, resolving with the entry written, its expiry included, in
   * the same round trip (the express-rate-limit adapter's window end).
   */
  async [incrementEntry](
    key: string,
    by = 1,
    options: IncrementOptions = {},
  ): Promise<StoreEntry<number>> {
    checkKey(key, 'increment');
    checkOptions(options, 'increment');
    if (typeof by !== 'number' || !Number.isFinite(by)) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `increment: by must be a finite number, got ${String(by)}`,
      );
    }
    const ttl = optionalMs(options.ttlMs, 'increment', 'ttlMs');
    const res = parseWire(
      Res.increment,
      await this.client.call(Verb.increment, defined({ s: this.name, k: key, by, ttl }), options),
      'PROTOCOL',
      'store increment',
    );
    const value = this.parse(key, res.v) as number;
    return res.x === undefined
      ? { value, revision: res.r }
      : { value, revision: res.r, expiresAt: res.x };
  }

  async update(
    key: string,
    fn: (current: unknown, entry: StoreEntry<unknown> | undefined) => unknown,
    options: UpdateOptions = {},
  ): Promise<StoreEntry<unknown>> {
    checkKey(key, 'update');
    checkOptions(options, 'update');
    if (typeof fn !== 'function') {
      throw new BusError('INVALID_ARGUMENT', 'update: fn must be a function');
    }
    const ttl = optionalMs(options.ttlMs, 'update', 'ttlMs');
    const maxAttempts = checkCount(
      options.maxAttempts ?? DEFAULT_UPDATE_ATTEMPTS,
      'update: maxAttempts',
    );
    // One update of a key at a time in this process: concurrent ones here would only make each
    // other retry. A nested update of the same key (from inside fn) goes through at once.
    const lane = `${this.name}\u0000${key}`;
    const inside = insideUpdates.getStore();
    if (inside?.has(lane)) return this.attempt(key, fn, options, ttl, maxAttempts, inside);
    const before = this.client.lanes.get(lane);
    let done!: () => void;
    const mine = new Promise<void>((resolve) => {
      done = resolve;
    });
    const tail = before === undefined ? mine : before.then(() => mine);
    this.client.lanes.set(lane, tail);
    try {
      if (before !== undefined) await untilOrAborted(before, options.signal);
      return await this.attempt(key, fn, options, ttl, maxAttempts, new Set(inside).add(lane));
    } finally {
      done();
      if (this.client.lanes.get(lane) === tail) this.client.lanes.delete(lane);
    }
  }

  /** The compare-and-set loop of {@link update}, with `lanes` marked as being updated. */
  private async attempt(
    key: string,
    fn: (current: unknown, entry: StoreEntry<unknown> | undefined) => unknown,
    options: UpdateOptions,
    ttl: number | undefined,
    maxAttempts: number,
    lanes: ReadonlySet<string>,
  ): Promise<StoreEntry<unknown>> {
    let current = await this.rawEntry(key, options);
    for (let attempt = 1; ; attempt++) {
      const entry = current === null ? undefined : this.toEntry(key, current);
      const next = await insideUpdates.run(lanes, () => fn(entry?.value, entry));
      const expected = current?.r ?? 0;
      const res = await this.sendSet(key, next, ttl, expected, options, 'store update');
      if (res.ok) {
        const value = this.parse(key, next);
        return res.x === undefined
          ? { value, revision: res.r }
          : { value, revision: res.r, expiresAt: res.x };
      }
      if (attempt >= maxAttempts) {
        const error = this.conflict(key, expected, res.cur);
        throw new BusError(
          'CONFLICT',
          `${error.message}; gave up after ${maxAttempts} attempts (other writers kept winning)`,
        );
      }
      current = res.cur;
      await backoff(attempt, options.signal);
    }
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<boolean> {
    checkKey(key, 'delete');
    checkOptions(options, 'delete');
    const ifRevision = optionalRevision(options.ifRevision, 'delete');
    const res = parseWire(
      Res.delete,
      await this.client.call(
        Verb.delete,
        defined({ s: this.name, k: key, if: ifRevision }),
        options,
      ),
      'PROTOCOL',
      'store delete',
    );
    if (!res.ok) throw this.conflict(key, ifRevision ?? 0, res.cur);
    return res.r > 0;
  }

  async keys(options: KeysOptions = {}): Promise<string[]> {
    checkOptions(options, 'keys');
    if (options.prefix !== undefined && typeof options.prefix !== 'string') {
      throw new BusError('INVALID_ARGUMENT', 'keys: prefix must be a string');
    }
    return parseWire(
      Res.keys,
      await this.client.call(Verb.keys, defined({ s: this.name, p: options.prefix }), options),
      'PROTOCOL',
      'store keys',
    );
  }

  watch(
    a: WatchOptions | ((change: StoreChange<unknown>) => void),
    b?: (change: StoreChange<unknown>) => void,
  ): Watch {
    const options: WatchOptions = typeof a === 'function' ? {} : a;
    const onChange = typeof a === 'function' ? a : b;
    const client = this.client;
    if (client.isClosed) {
      throw new BusError('CLOSED', `watch '${this.name}': the bus is closed`);
    }
    checkOptions(options, 'watch');
    if (typeof onChange !== 'function') {
      throw new BusError('INVALID_ARGUMENT', 'watch: onChange must be a function');
    }
    if (options.key !== undefined) checkKey(options.key, 'watch');
    if (options.prefix !== undefined) checkPrefix(options.prefix, 'watch');
    if (options.key !== undefined && options.prefix !== undefined) {
      throw new BusError('INVALID_ARGUMENT', 'watch: give a key or a prefix, not both');
    }
    const id = client.watchId();
    client.watches.set(id, { store: this, onChange });
    let stopped = false;
    const ready = (async () =>
      parseWire(
        Res.watch,
        await client.call(
          Verb.watch,
          defined({
            s: this.name,
            w: id,
            k: options.key,
            p: options.prefix,
            init: options.initial === true ? true : undefined,
          }),
        ),
        'PROTOCOL',
        'store watch',
      ))();
    ready.catch((error: unknown) => {
      if (stopped) return;
      stopped = true;
      client.watches.delete(id);
      // A closing bus ends its watches anyway: nothing to report.
      if (error instanceof BusError && error.code === 'CLOSED') return;
      client.report(error instanceof BusError ? error : new BusError('PROTOCOL', String(error)));
    });
    const stop = () => {
      if (stopped) return;
      stopped = true;
      client.watches.delete(id);
      client.notify(Verb.unwatch, { w: id });
    };
    return Object.assign(stop, { ready });
  }

  // ------------------------------------------------------------------ helpers

  private async rawEntry(key: string, options: StoreCallOptions = {}): Promise<WireEntry | null> {
    checkKey(key, 'get');
    checkOptions(options, 'get');
    return parseWire(
      Res.get,
      await this.client.call(Verb.get, { s: this.name, k: key }, options),
      'PROTOCOL',
      'store get',
    );
  }

  private toEntry(key: string, raw: WireEntry): StoreEntry<unknown> {
    const value = this.parse(key, raw.v);
    return raw.x === undefined
      ? { value, revision: raw.r }
      : { value, revision: raw.r, expiresAt: raw.x };
  }

  /** Parses a value read from the store with its schema (`BAD_OUTPUT`). */
  private parse(key: string, value: unknown): unknown {
    const parsed = this.schema.safeParse(value);
    if (parsed.success) return parsed.data;
    throw badOutput(this.name, key, parsed.error);
  }

  /** One `$state.set` (a compare-and-set when `ifRevision` is given), its answer checked. */
  private async sendSet(
    key: string,
    value: unknown,
    ttl: number | undefined,
    ifRevision: number | undefined,
    options: StoreCallOptions,
    what: string,
  ) {
    const answer = await this.client.call(
      Verb.set,
      defined({ s: this.name, k: key, v: value, ttl, if: ifRevision }),
      options,
    );
    return parseWire(Res.set, answer, 'PROTOCOL', what);
  }

  private conflict(key: string, expected: number, current: WireEntry | null): BusError {
    const now = current === null ? 'it does not exist' : `it is at revision ${current.r}`;
    const wanted = expected === 0 ? 'to not exist' : `at revision ${expected}`;
    return new BusError(
      'CONFLICT',
      `store '${this.name}' key '${key}': expected ${wanted}, but ${now}; nothing was written`,
    );
  }
}

// ---------------------------------------------------------------------------------------------

/** A value read from store `store` failed its schema. */
export function badOutput(
  store: string,
  key: string,
  error: {
    message: string;
    issues: readonly { code: string; path: readonly PropertyKey[]; message: string }[];
  },
): BusError {
  return new BusError(
    'BAD_OUTPUT',
    `store '${store}' key '${key}': the stored value fails the store's schema: ${summarizeIssues(error.issues, 'value')}`,
    { issues: toIssues(error.issues) },
  );
}

/** The store keys whose `update` fn is running in the current async context. */
const insideUpdates = new AsyncLocalStorage<ReadonlySet<string>>();

/** Resolves when `promise` settles, or rejects with `ABORTED` when `signal` fires first. */
function untilOrAborted(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return promise;
  return new Promise<void>((resolve, reject) => {
    const onAbort = () =>
      reject(new BusError('ABORTED', 'update was aborted', { cause: signal.reason }));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/** Waits a random time, growing with `attempt` (full jitter), unless `signal` fires. */
function backoff(attempt: number, signal: AbortSignal | undefined): Promise<void> {
  const ms = Math.random() * Math.min(MAX_BACKOFF_MS, 2 ** attempt);
  return sleep(ms, signal, { what: 'update', unref: true });
}
