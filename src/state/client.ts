/**
 * The client side of shared state, the same in the primary and in workers: the `Store` proxy
 * (`bus.store(name)`) and its watches (locks: lease.ts). Every operation is one system call to
 * the primary's host; what comes back is validated here with the store's schema.
 *
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { BaseBus } from '../bus/base.js';
import type { CallOptions } from '../bus/types.js';
import type { Contract, Schema, StoreName } from '../contract.js';
import { BusError, summarizeIssues, toIssues } from '../errors.js';
import {
  checkKey,
  checkOptions,
  checkPrefix,
  defined,
  optionalMs,
  optionalRevision,
} from './args.js';
import { type ChangeMessage, hostOf, Op, parseWire, Res, type WireEntry } from './protocol.js';
import type {
  CounterStore,
  DeleteOptions,
  IncrementOptions,
  KeysOptions,
  SetOptions,
  StoreCallOptions,
  StoreChange,
  StoreEntry,
  StoreOf,
  UpdateOptions,
  Watch,
  WatchOptions,
} from './types.js';

/** Default `maxAttempts` of `update`. */
export const DEFAULT_UPDATE_ATTEMPTS = 64;
/** The longest backoff between two `update` attempts, in ms. */
const MAX_BACKOFF_MS = 100;

type AnyBus = BaseBus<Contract>;

interface WatchEntry {
  readonly store: StoreClient;
  readonly onChange: (change: StoreChange<unknown>) => void;
}

/** One process's state client: its stores, its watches, its acquire ids. */
export class StateClient {
  private readonly stores = new Map<string, StoreClient>();
  readonly watches = new Map<number, WatchEntry>();
  /** The last queued `update` of each store and key in this process, to run them one by one. */
  readonly lanes = new Map<string, Promise<void>>();
  private nextWatchId = 1;
  private nextAcquireId = 1;
  private listening = false;

  constructor(readonly bus: AnyBus) {
    void bus.closed.then(() => {
      this.watches.clear();
      if (bus.self === 'primary') hostOf(bus)?.setLocalSink(undefined);
    });
  }

  /**
   * The proxy of store `name` (one per name).
   * @throws {@link BusError} `INVALID_ARGUMENT` for a name not in the contract.
   */
  store(name: string): StoreClient {
    let store = this.stores.get(name);
    if (store === undefined) {
      const schema = this.bus.contract.stores.get(name);
      if (schema === undefined) {
        throw new BusError('INVALID_ARGUMENT', `store: '${name}' is not a store of the contract`);
      }
      store = new StoreClient(this, name, schema);
      this.stores.set(name, store);
    }
    return store;
  }

  /** A watch id, unique in this process. */
  watchId(): number {
    return this.nextWatchId++;
  }

  /** A lock acquire id, unique in this process. */
  acquireId(): number {
    return this.nextAcquireId++;
  }

  /** One system call to the primary's host. */
  call(op: string, input: unknown, options: StoreCallOptions = {}): Promise<unknown> {
    const call: { timeoutMs?: number; signal?: AbortSignal } = {};
    if (options.timeoutMs !== undefined) call.timeoutMs = options.timeoutMs;
    if (options.signal !== undefined) call.signal = options.signal;
    return this.bus.systemCall(op, 'primary', input, call as CallOptions);
  }

  /** A one-way message to the host (in order with this process's calls). */
  notify(op: string, payload: unknown): void {
    if (this.bus.self === 'primary') {
      hostOf(this.bus)?.receive(op, payload, 'primary');
      return;
    }
    const bus: object = this.bus;
    if (hasSystemSend(bus)) bus.systemSend(op, payload);
  }

  /** Starts receiving change messages (once per process). */
  listen(): void {
    if (this.listening) return;
    this.listening = true;
    if (this.bus.self === 'primary') {
      hostOf(this.bus)?.setLocalSink((m) => this.onChange(m));
    } else {
      this.bus.systemSubscribe(Op.change, (m) => this.onChange(m));
    }
  }

  private onChange(raw: unknown): void {
    let message: ChangeMessage;
    try {
      message = parseWire(Res.change, raw, 'PROTOCOL', 'store change');
    } catch (error) {
      this.report(error as BusError);
      return;
    }
    for (const id of message.w) {
      const watch = this.watches.get(id);
      if (watch === undefined) continue; // stopped meanwhile
      let change: StoreChange<unknown>;
      if (message.o === 'set') {
        const parsed = watch.store.schema.safeParse(message.v);
        if (!parsed.success) {
          this.report(badOutput(watch.store.name, message.k, parsed.error));
          continue;
        }
        change = { key: message.k, op: 'set', value: parsed.data, revision: message.r };
      } else {
        change = { key: message.k, op: message.o, revision: message.r };
      }
      try {
        const result: unknown = watch.onChange(change);
        if (result instanceof Promise) {
          result.catch((error: unknown) => this.watcherFailed(watch.store.name, error));
        }
      } catch (error) {
        this.watcherFailed(watch.store.name, error);
      }
    }
  }

  private watcherFailed(store: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.report(
      new BusError('SUBSCRIBER_FAILED', `a watcher of store '${store}' threw: ${message}`, {
        cause: error,
      }),
    );
  }

  /** Emits `error` on the bus, or prints a warning when nobody listens. */
  report(error: BusError): void {
    if (this.bus.listenerCount('error') > 0) this.bus.emit('error', error);
    else process.emitWarning(error.message, { type: 'BusWarning', code: error.code });
  }
}

interface WorkerSend {
  systemSend(topic: string, payload: unknown): boolean;
}

function hasSystemSend(bus: object): bus is WorkerSend {
  return typeof (bus as Partial<WorkerSend>).systemSend === 'function';
}

const clients = new WeakMap<object, StateClient>();

/** The state client of `bus` (one per bus). */
export function clientOf(bus: AnyBus): StateClient {
  let client = clients.get(bus);
  if (client === undefined) {
    client = new StateClient(bus);
    clients.set(bus, client);
  }
  return client;
}

/** The proxy of one store, in one process. Implements every method; `StoreOf` picks the type. */
class StoreClient implements CounterStore<unknown, unknown> {
  constructor(
    private readonly client: StateClient,
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
    const res = parseWire(
      Res.set,
      await this.client.call(
        Op.set,
        defined({ s: this.name, k: key, v: value, ttl, if: ifRevision }),
        options,
      ),
      'PROTOCOL',
      'store set',
    );
    if (!res.ok) throw this.conflict(key, ifRevision ?? 0, res.cur);
    return res.r;
  }

  async increment(key: string, by = 1, options: IncrementOptions = {}): Promise<number> {
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
      await this.client.call(Op.increment, defined({ s: this.name, k: key, by, ttl }), options),
      'PROTOCOL',
      'store increment',
    );
    return this.parse(key, res.v) as number;
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
    const maxAttempts = options.maxAttempts ?? DEFAULT_UPDATE_ATTEMPTS;
    if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `update: maxAttempts must be a positive integer, got ${String(maxAttempts)}`,
      );
    }
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
      const res = parseWire(
        Res.set,
        await this.client.call(
          Op.set,
          defined({ s: this.name, k: key, v: next, ttl, if: expected }),
          options,
        ),
        'PROTOCOL',
        'store update',
      );
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
      await this.client.call(Op.delete, defined({ s: this.name, k: key, if: ifRevision }), options),
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
      await this.client.call(Op.keys, defined({ s: this.name, p: options.prefix }), options),
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
    if (client.bus.isClosed) {
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
    client.listen();
    let stopped = false;
    const ready = (async () =>
      parseWire(
        Res.watch,
        await client.call(
          Op.watch,
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
      client.notify(Op.unwatch, { w: id });
    };
    return Object.assign(stop, { ready });
  }

  // ------------------------------------------------------------------ helpers

  private async rawEntry(key: string, options: StoreCallOptions = {}): Promise<WireEntry | null> {
    checkKey(key, 'get');
    checkOptions(options, 'get');
    return parseWire(
      Res.get,
      await this.client.call(Op.get, { s: this.name, k: key }, options),
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
// What BaseBus delegates to.

/**
 * @internal The store proxy of `name` for `bus` (one per bus and name).
 * @throws {@link BusError} `INVALID_ARGUMENT` (synchronously) for a name not in the contract.
 */
export function storeOf<C extends Contract, S extends StoreName<C>>(
  bus: BaseBus<C>,
  name: S,
): StoreOf<C, S> {
  return clientOf(bus as unknown as AnyBus).store(name) as unknown as StoreOf<C, S>;
}

// ---------------------------------------------------------------------------------------------

function badOutput(
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
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new BusError('ABORTED', 'update was aborted', { cause: signal.reason }));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new BusError('ABORTED', 'update was aborted', { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
