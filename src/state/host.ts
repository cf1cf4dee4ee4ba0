/**
 * The hub side of the state extension: the store host, every store's entries and revision
 * counter, TTL expiry, watches by process, the lock table, and snapshot persistence. It serves
 * the state protocol (`$state.<verb>`, callable by every process) on the hub's extension context;
 * each operation is a synchronous function of the current state, so the hub applies them one at
 * a time, in arrival order. Its snapshot is loaded before it serves ({@link StoreHost.load}).
 *
 * @module
 */
import type { Contract, Schema } from '../contract.js';
import type { Extension, ExtensionContext } from '../core/extension.js';
import type { HandlerContext, Origin } from '../core/types.js';
import { BusError } from '../errors.js';
import { DEFAULT_MAX_DEPTH } from '../protocol/codec.js';
import { ExpiryQueue } from './expiry.js';
import { stateExtension } from './extension.js';
import {
  checkConfig,
  DEFAULT_MAX_ENTRIES,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_PERSIST_INTERVAL_MS,
  type StoreHostConfig,
} from './host-config.js';
import { type Grant, LockTable } from './lock.js';
import {
  preparePersistDir,
  readSnapshot,
  type SnapshotData,
  type SnapshotEntry,
  SnapshotWriter,
} from './persist.js';
import { type ChangeMessage, parseWire, Req, Verb, type WireEntry } from './protocol.js';
import type { StateApi } from './types.js';
import { isNumberSchema, keepable, type ValueLimits } from './values.js';
import { matches, WatchTable } from './watches.js';

export {
  DEFAULT_MAX_ENTRIES,
  DEFAULT_PERSIST_INTERVAL_MS,
  type StoreHostConfig,
} from './host-config.js';

/**
 * A bus the hub's state extension can be installed on, as {@link StoreHost.open} needs it (the
 * primary's bus is one).
 */
export interface InstallTarget<C extends Contract> {
  readonly contract: C;
  install<Api>(extension: Extension<Api>): Api;
}

/** Counts of the host, for tests and leak checks. */
export interface StoreHostStats {
  /** Live entries (expired ones not yet swept included), by store. */
  readonly entries: Readonly<Record<string, number>>;
  /** Watches registered, every process. */
  readonly watches: number;
  /** The processes that have at least one watch. */
  readonly watchers: readonly Origin[];
  /** Lock leases held. */
  readonly leases: number;
  /** Lock acquires waiting. */
  readonly waiters: number;
}

interface Entry {
  readonly value: unknown;
  readonly revision: number;
  readonly expiresAt: number | undefined;
}

interface Bucket {
  readonly name: string;
  readonly schema: Schema;
  /** Whether the schema takes numbers: `increment` is allowed. */
  readonly numeric: boolean;
  readonly maxEntries: number;
  readonly entries: Map<string, Entry>;
  revision: number;
}

type VerbName = (typeof Verb)[keyof typeof Verb];

/**
 * The hub's store host. Loaded by `startCluster` before any fork and served by the state
 * extension installed on the primary's bus; closed by `app.close()` before the bus (and by the
 * extension's close, if not closed before).
 */
export class StoreHost {
  private readonly buckets = new Map<string, Bucket>();
  private readonly watches: WatchTable;
  private readonly expiry: ExpiryQueue;
  /** Entries that have an expiry, every store: to tell when stale heap items pile up. */
  private ttlEntries = 0;
  private readonly locks: LockTable;
  private readonly reportTo: ((error: BusError) => void) | undefined;
  /** The hub's extension context, once the host serves on it. */
  private ctx: ExtensionContext | undefined;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly snapshots: SnapshotWriter | undefined;
  /** What a kept value must fit: the bus's limits. */
  private readonly valueLimits: ValueLimits;
  private closing: Promise<void> | undefined;

  /**
   * Loads the snapshot (when `persist` is set) of the stores of `contract`; the host serves
   * nothing until the state extension is installed with it (`stateExtension(contract, { host })`
   * on the hub's bus). With `persist`, it first gets the snapshot's directory ready: creates it,
   * removes the temporary files a killed primary left (`<file>.<id>.tmp`), and checks that it can
   * write there.
   *
   * @throws never synchronously; rejects with {@link BusError} `PERSIST_FAILED` when the snapshot
   *   file exists but cannot be read or is corrupt, or its directory cannot be written;
   *   `INVALID_ARGUMENT` for a bad option.
   */
  static async load<C extends Contract>(
    contract: C,
    config: StoreHostConfig<C> = {},
  ): Promise<StoreHost> {
    const limits = checkConfig(contract, config);
    let snapshot: SnapshotData | undefined;
    if (config.persist !== undefined) {
      await preparePersistDir(config.persist.file);
      snapshot = await readSnapshot(config.persist.file);
    }
    return new StoreHost(contract, config, limits, snapshot);
  }

  /**
   * {@link load}, then installs the state extension with this host on the hub's `bus`, in one
   * step (tests, and buses made by hand). Rejects as `load` does.
   */
  static async open<C extends Contract>(
    bus: InstallTarget<C>,
    config: StoreHostConfig<C> = {},
  ): Promise<StoreHost> {
    const host = await StoreHost.load(bus.contract, config);
    bus.install<StateApi<C>>(stateExtension(bus.contract, { host }));
    return host;
  }

  private constructor(
    contract: Contract,
    config: StoreHostConfig,
    limits: ReadonlyMap<string, number>,
    snapshot: SnapshotData | undefined,
  ) {
    this.reportTo = config.report;
    for (const [name, schema] of contract.stores) {
      this.buckets.set(name, {
        name,
        schema,
        numeric: isNumberSchema(schema),
        maxEntries: limits.get(name) ?? config.maxEntries ?? DEFAULT_MAX_ENTRIES,
        entries: new Map(),
        revision: 0,
      });
    }
    this.watches = new WatchTable(
      (to, verb, message) => this.ctx?.send(to, verb, message) ?? false,
      config.maxWatchesPerProcess,
    );
    this.expiry = new ExpiryQueue(() => this.sweep());
    this.valueLimits = {
      maxDepth: config.maxDepth ?? DEFAULT_MAX_DEPTH,
      maxPayloadBytes: config.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    };
    if (snapshot !== undefined) this.load(snapshot);
    const persist = config.persist;
    this.snapshots =
      persist === undefined
        ? undefined
        : new SnapshotWriter(
            persist.file,
            persist.intervalMs ?? DEFAULT_PERSIST_INTERVAL_MS,
            () => this.snapshot(),
            (error) => this.report(error),
          );
    // A grant moves the fencing token counter, which the snapshot keeps.
    this.locks = new LockTable(snapshot?.token ?? 0, () => this.snapshots?.markDirty());
  }

  /** Whether {@link close} was called. */
  get isClosed(): boolean {
    return this.closing !== undefined;
  }

  /** Counts of entries, watches, leases and waiters. */
  stats(): StoreHostStats {
    const entries: Record<string, number> = {};
    for (const b of this.buckets.values()) entries[b.name] = b.entries.size;
    return { entries, ...this.watches.stats(), ...this.locks.stats() };
  }

  // ------------------------------------------------------------------ wiring

  /**
   * @internal Serves the state protocol on the hub's extension context (the state extension
   * calls it when installed): every verb, callable by every process; the one-way messages; and
   * the end of a gone process's leases and watches.
   * @throws {@link BusError} `INVALID_ARGUMENT` when it already serves a bus, or is closed.
   */
  serve(ctx: ExtensionContext): void {
    if (this.ctx !== undefined || this.closing !== undefined) {
      throw new BusError('INVALID_ARGUMENT', 'a store host serves one bus, once');
    }
    this.ctx = ctx;
    const handle = (verb: VerbName, fn: (input: unknown, context: HandlerContext) => unknown) =>
      this.unsubscribe.push(ctx.handle(verb, fn, { callers: 'any' }));
    handle(Verb.get, (input) => this.get(input));
    handle(Verb.set, (input) => this.set(input));
    handle(Verb.increment, (input) => this.increment(input));
    handle(Verb.delete, (input) => this.delete(input));
    handle(Verb.keys, (input) => this.keys(input));
    handle(Verb.watch, (input, context) => this.watch(input, context.caller));
    handle(Verb.acquire, (input, context) => this.acquire(input, context));
    handle(Verb.release, (input, context) => {
      const { n, t, k } = parseWire(Req.release, input, 'INVALID_ARGUMENT', 'lock release');
      const claim = { name: n, origin: context.caller, token: t, proof: k };
      return this.refused(() => this.locks.release(claim));
    });
    handle(Verb.extend, (input, context) => {
      const { n, t, k, ttl } = parseWire(Req.extend, input, 'INVALID_ARGUMENT', 'lock extend');
      const claim = { name: n, origin: context.caller, token: t, proof: k };
      return { x: this.refused(() => this.locks.extend(claim, ttl)) };
    });
    // One-way messages from a client: stop a watch, or give up on an acquire.
    const oneWay = (verb: VerbName, fn: (payload: unknown, origin: Origin) => void) =>
      this.unsubscribe.push(ctx.on(verb, (payload, source) => this.reporting(fn, payload, source)));
    oneWay(Verb.unwatch, (payload, origin) => {
      const { w } = parseWire(Req.unwatch, payload, 'INVALID_ARGUMENT', 'unwatch');
      this.watches.remove(origin, w);
    });
    oneWay(Verb.cancel, (payload, origin) => {
      const { n, a } = parseWire(Req.cancel, payload, 'INVALID_ARGUMENT', 'lock cancel');
      this.locks.cancel(n, origin, a);
    });
    this.unsubscribe.push(
      ctx.peers.onGone((id) => {
        this.watches.dropOrigin(id);
        this.locks.gone(id);
      }),
    );
  }

  /** Where reports go: `config.report`, else the bus's reports, else a process warning. */
  private report(error: BusError): void {
    if (this.reportTo !== undefined) this.reportTo(error);
    else if (this.ctx !== undefined) this.ctx.report(error);
    else process.emitWarning(error.message, { type: 'BusWarning', code: error.code });
  }

  /** Runs `fn`; a `FORBIDDEN` it throws (a claim on a lease not the caller's) is also reported. */
  private refused<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof BusError && error.code === 'FORBIDDEN') this.report(error);
      throw error;
    }
  }

  /** Runs a one-way message's `fn`: a BusError it throws has nobody to reject, so is reported. */
  private reporting(
    fn: (payload: unknown, origin: Origin) => void,
    payload: unknown,
    origin: Origin,
  ): void {
    try {
      fn(payload, origin);
    } catch (error) {
      if (error instanceof BusError) this.report(error);
      else throw error;
    }
  }

  private bucket(name: string): Bucket {
    const b = this.buckets.get(name);
    if (b === undefined) {
      throw new BusError('INVALID_ARGUMENT', `'${name}' is not a store of the contract`);
    }
    return b;
  }

  // ------------------------------------------------------------------ operations

  private get(input: unknown): WireEntry | null {
    const { s, k } = parseWire(Req.get, input, 'INVALID_ARGUMENT', 'store get');
    return wire(this.live(this.bucket(s), k));
  }

  private set(
    input: unknown,
  ): { ok: true; r: number; x?: number } | { ok: false; cur: WireEntry | null } {
    const req = parseWire(Req.set, input, 'INVALID_ARGUMENT', 'store set');
    const b = this.bucket(req.s);
    if (req.v === undefined) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `store '${b.name}' key '${req.k}': a value cannot be undefined (use delete)`,
      );
    }
    const value = this.validate(b, req.k, req.v);
    const cur = this.live(b, req.k);
    if (req.if !== undefined && (cur?.revision ?? 0) !== req.if) {
      return { ok: false, cur: wire(cur) };
    }
    if (cur === undefined) this.ensureRoom(b, req.k);
    const expiresAt = req.ttl === undefined ? undefined : Date.now() + req.ttl;
    const revision = this.write(b, req.k, value, expiresAt);
    return expiresAt === undefined
      ? { ok: true, r: revision }
      : { ok: true, r: revision, x: expiresAt };
  }

  private increment(input: unknown): { v: unknown; r: number } {
    const req = parseWire(Req.increment, input, 'INVALID_ARGUMENT', 'store increment');
    const b = this.bucket(req.s);
    if (!b.numeric) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `store '${b.name}': increment needs a store of numbers (its schema is not a number)`,
      );
    }
    const cur = this.live(b, req.k);
    const old = cur === undefined ? 0 : cur.value;
    if (typeof old !== 'number') {
      throw new BusError(
        'INVALID_ARGUMENT',
        `store '${b.name}' key '${req.k}': increment needs a number, the entry holds a ${typeof old}`,
      );
    }
    const next = this.validate(b, req.k, old + req.by);
    if (cur === undefined) this.ensureRoom(b, req.k);
    const expiresAt =
      cur !== undefined ? cur.expiresAt : req.ttl === undefined ? undefined : Date.now() + req.ttl;
    return { v: next, r: this.write(b, req.k, next, expiresAt) };
  }

  private delete(input: unknown): { ok: true; r: number } | { ok: false; cur: WireEntry | null } {
    const req = parseWire(Req.delete, input, 'INVALID_ARGUMENT', 'store delete');
    const b = this.bucket(req.s);
    const cur = this.live(b, req.k);
    if (req.if !== undefined && (cur?.revision ?? 0) !== req.if) {
      return { ok: false, cur: wire(cur) };
    }
    if (cur === undefined) return { ok: true, r: 0 };
    return { ok: true, r: this.remove(b, req.k, cur, 'delete') };
  }

  private keys(input: unknown): string[] {
    const { s, p } = parseWire(Req.keys, input, 'INVALID_ARGUMENT', 'store keys');
    const b = this.bucket(s);
    const now = Date.now();
    const keys: string[] = [];
    const due: string[] = [];
    for (const [key, e] of b.entries) {
      if (p !== undefined && !key.startsWith(p)) continue;
      if (e.expiresAt !== undefined && e.expiresAt <= now) due.push(key);
      else keys.push(key);
    }
    for (const key of due) this.live(b, key, now);
    return keys.sort();
  }

  private watch(input: unknown, origin: Origin): number {
    const req = parseWire(Req.watch, input, 'INVALID_ARGUMENT', 'store watch');
    const b = this.bucket(req.s);
    if (req.k !== undefined && req.p !== undefined) {
      throw new BusError('INVALID_ARGUMENT', 'watch: give a key or a prefix, not both');
    }
    const reg = { origin, id: req.w, store: b.name, key: req.k, prefix: req.p };
    this.watches.add(reg);
    if (req.init === true) {
      const now = Date.now();
      const initial: Array<[string, Entry]> = [];
      for (const [key, e] of b.entries) {
        if (matches(reg, key) && (e.expiresAt === undefined || e.expiresAt > now)) {
          initial.push([key, e]);
        }
      }
      initial.sort((x, y) => x[1].revision - y[1].revision);
      for (const [key, e] of initial) {
        const message: ChangeMessage = {
          w: [reg.id],
          s: b.name,
          k: key,
          o: 'set',
          v: e.value,
          r: e.revision,
        };
        this.watches.send(origin, message);
      }
    }
    return b.revision;
  }

  private acquire(input: unknown, ctx: HandlerContext): Grant | Promise<Grant> {
    const req = parseWire(Req.acquire, input, 'INVALID_ARGUMENT', 'lock acquire');
    return this.locks.acquire(req.n, ctx.caller, req.a, req.ttl, req.wait, () => ctx.signal);
  }

  // ------------------------------------------------------------------ state changes

  /**
   * Validates a value about to be written with the store's schema and returns what to keep: the
   * schema's output, checked to be a value the store can give back and persist (see values.ts).
   * Throws `BAD_INPUT`, `PAYLOAD_TOO_DEEP`, `PAYLOAD_TOO_LARGE` or `INVALID_ARGUMENT` before
   * anything changes.
   */
  private validate(b: Bucket, key: string, value: unknown): unknown {
    return keepable(b.schema, `store '${b.name}' key '${key}'`, value, this.valueLimits);
  }

  /** The entry of `key`, expiring it first if its TTL has passed. */
  private live(b: Bucket, key: string, now = Date.now()): Entry | undefined {
    const e = b.entries.get(key);
    if (e?.expiresAt !== undefined && e.expiresAt <= now) {
      this.remove(b, key, e, 'expire');
      return undefined;
    }
    return e;
  }

  /** Rejects a new key with `STORE_FULL` when the store is at `maxEntries` (after expiring). */
  private ensureRoom(b: Bucket, key: string): void {
    if (b.entries.size < b.maxEntries) return;
    this.sweep();
    if (b.entries.size < b.maxEntries) return;
    throw new BusError(
      'STORE_FULL',
      `store '${b.name}' is full (maxEntries ${b.maxEntries}): key '${key}' was not written; delete keys, set a TTL, or raise maxEntries`,
    );
  }

  /** Writes an entry: a new revision, its expiry scheduled, its watchers told. */
  private write(b: Bucket, key: string, value: unknown, expiresAt: number | undefined): number {
    const revision = ++b.revision;
    const old = b.entries.get(key);
    if (old?.expiresAt !== undefined) this.ttlEntries--;
    b.entries.set(key, { value, revision, expiresAt });
    if (expiresAt !== undefined) {
      this.ttlEntries++;
      this.expiry.push({ at: expiresAt, store: b.name, key });
      if (this.expiry.size > 2 * this.ttlEntries + 1_024) this.compactExpiry();
    }
    this.changed(b, key, 'set', value, revision);
    return revision;
  }

  /** Removes an entry (`delete` or `expire`): a new revision, its watchers told. */
  private remove(b: Bucket, key: string, e: Entry, op: 'delete' | 'expire'): number {
    b.entries.delete(key);
    if (e.expiresAt !== undefined) this.ttlEntries--;
    const revision = ++b.revision;
    this.changed(b, key, op, undefined, revision);
    return revision;
  }

  /** Expires every entry whose TTL has passed (the one sweep timer, and `STORE_FULL` checks). */
  private sweep(): void {
    const now = Date.now();
    for (let d = this.expiry.popDue(now); d !== undefined; d = this.expiry.popDue(now)) {
      const b = this.buckets.get(d.store);
      if (b !== undefined) this.live(b, d.key, now);
    }
  }

  /** Rebuilds the expiry heap from the live entries once stale items outnumber them. */
  private compactExpiry(): void {
    const items: Array<{ at: number; store: string; key: string }> = [];
    for (const b of this.buckets.values()) {
      for (const [key, e] of b.entries) {
        if (e.expiresAt !== undefined) items.push({ at: e.expiresAt, store: b.name, key });
      }
    }
    this.expiry.rebuild(items);
  }

  /** A change: the snapshot is dirty, and the watchers of `key` are told. */
  private changed(
    b: Bucket,
    key: string,
    op: ChangeMessage['o'],
    value: unknown,
    revision: number,
  ): void {
    this.snapshots?.markDirty();
    this.watches.changed(b.name, key, op, value, revision);
  }

  // ------------------------------------------------------------------ persistence

  private load(snapshot: SnapshotData): void {
    const now = Date.now();
    for (const [name, data] of Object.entries(snapshot.stores)) {
      const b = this.buckets.get(name);
      if (b === undefined) continue; // a store no longer in the contract
      b.revision = data.revision;
      for (const [key, value, revision, x] of data.entries) {
        if (x !== null && x <= now) continue;
        b.entries.set(key, { value, revision, expiresAt: x ?? undefined });
        if (x !== null) {
          this.ttlEntries++;
          this.expiry.push({ at: x, store: name, key });
        }
      }
    }
  }

  private snapshot(): SnapshotData {
    const now = Date.now();
    const stores: Record<string, { revision: number; entries: SnapshotEntry[] }> = {};
    for (const b of this.buckets.values()) {
      const entries: SnapshotEntry[] = [];
      for (const [key, e] of b.entries) {
        if (e.expiresAt !== undefined && e.expiresAt <= now) continue;
        entries.push([key, e.value, e.revision, e.expiresAt ?? null]);
      }
      stores[b.name] = { revision: b.revision, entries };
    }
    return { savedAt: now, token: this.locks.token, stores };
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * Stops serving: lock waiters reject with `CLOSED`, leases and watches end, every timer is
   * cleared, and (with `persist`) a last snapshot is written if anything changed, or if the one
   * before failed. Idempotent (the same promise).
   *
   * @throws never synchronously; rejects with {@link BusError} `PERSIST_FAILED` when that last
   *   snapshot cannot be written (everything else is closed by then; the file keeps the snapshot
   *   before).
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    for (const u of this.unsubscribe.splice(0)) u();
    this.locks.close();
    this.expiry.clear();
    this.watches.clear();
    this.closing = this.snapshots?.close() ?? Promise.resolve();
    return this.closing;
  }
}

// ---------------------------------------------------------------------------------------------

function wire(e: Entry | undefined): WireEntry | null {
  if (e === undefined) return null;
  return e.expiresAt === undefined
    ? { v: e.value, r: e.revision }
    : { v: e.value, r: e.revision, x: e.expiresAt };
}
