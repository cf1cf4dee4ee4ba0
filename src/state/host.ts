/**
 * The store host, in the primary only: every store's entries and revision counter, TTL expiry,
 * watches by process, the lock table, and snapshot persistence. It serves the store protocol as
 * system methods of the primary's bus; each operation is a synchronous function of the current
 * state, so the primary applies them one at a time, in arrival order.
 *
 * @module
 */
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../bus/base.js';
import type { PrimaryBus } from '../bus/primary.js';
import type { HandlerContext, Origin } from '../bus/types.js';
import type { Contract, Schema } from '../contract.js';
import { BusError } from '../errors.js';
import { DEFAULT_MAX_DEPTH } from '../protocol/codec.js';
import { ExpiryQueue } from './expiry.js';
import { type Grant, LockTable } from './lock.js';
import {
  preparePersistDir,
  readSnapshot,
  type SnapshotData,
  type SnapshotEntry,
  SnapshotWriter,
} from './persist.js';
import {
  type ChangeMessage,
  type LocalHost,
  Op,
  parseWire,
  Req,
  registerHost,
  type WireEntry,
} from './protocol.js';
import type { PersistOptions, StoreHostOptions } from './types.js';
import { keepable, type ValueLimits } from './values.js';
import { matches, WatchTable } from './watches.js';

/** Default `maxEntries` of a store. */
export const DEFAULT_MAX_ENTRIES = 10_000;
/** Default `persist.intervalMs`, in ms. */
export const DEFAULT_PERSIST_INTERVAL_MS = 1_000;

/** What {@link StoreHost.open} takes: the host's options, persistence, and where to report. */
export interface StoreHostConfig<C extends Contract = Contract> extends StoreHostOptions<C> {
  /** Snapshot persistence; absent: the stores live in memory only. */
  readonly persist?: PersistOptions;
  /**
   * The bus's `maxDepth`, in levels of arrays and objects: a value deeper than the bus could send
   * back to a reader is refused when written (`PAYLOAD_TOO_DEEP`).
   * @default 128
   */
  readonly maxDepth?: number;
  /**
   * The bus's `maxPayloadBytes`, in bytes: a value larger than the bus could send back to a
   * reader is refused when written (`PAYLOAD_TOO_LARGE`).
   * @default 8_388_608 (8 MiB)
   */
  readonly maxPayloadBytes?: number;
  /**
   * Told of problems with no caller to reject (a snapshot that could not be written), and of
   * refusals a hostile process should not keep to itself (`FORBIDDEN`).
   * @default the bus's `error` event; `process.emitWarning` when nobody listens to it
   */
  readonly report?: (error: BusError) => void;
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

type OpName = (typeof Op)[keyof typeof Op];

/** The primary's store host. Made by `startCluster`; closed by `app.close()` before the bus. */
export class StoreHost {
  private readonly buckets = new Map<string, Bucket>();
  private readonly watches: WatchTable;
  private readonly expiry: ExpiryQueue;
  /** Entries that have an expiry, every store: to tell when stale heap items pile up. */
  private ttlEntries = 0;
  private readonly locks: LockTable;
  private readonly report: (error: BusError) => void;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly snapshots: SnapshotWriter | undefined;
  /** What a kept value must fit: the bus's limits. */
  private readonly valueLimits: ValueLimits;
  private closing: Promise<void> | undefined;

  /**
   * Loads the snapshot (when `persist` is set) and starts serving the store protocol on `bus`.
   * With `persist`, it first gets the snapshot's directory ready: creates it, removes the
   * temporary files a killed primary left (`<file>.<id>.tmp`), and checks that it can write there.
   *
   * @throws never synchronously; rejects with {@link BusError} `PERSIST_FAILED` when the snapshot
   *   file exists but cannot be read or is corrupt, or its directory cannot be written;
   *   `INVALID_ARGUMENT` for a bad option.
   */
  static async open<C extends Contract>(
    bus: PrimaryBus<C>,
    config: StoreHostConfig<C> = {},
  ): Promise<StoreHost> {
    const limits = checkConfig(bus.contract, config);
    let snapshot: SnapshotData | undefined;
    if (config.persist !== undefined) {
      await preparePersistDir(config.persist.file);
      snapshot = await readSnapshot(config.persist.file);
    }
    return new StoreHost(bus, config, limits, snapshot);
  }

  private constructor(
    private readonly bus: PrimaryBus<Contract>,
    config: StoreHostConfig,
    limits: ReadonlyMap<string, number>,
    snapshot: SnapshotData | undefined,
  ) {
    this.report =
      config.report ??
      ((error) => {
        if (bus.listenerCount('error') > 0) bus.emit('error', error);
        else process.emitWarning(error.message, { type: 'BusWarning', code: error.code });
      });
    for (const [name, schema] of bus.contract.stores) {
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
      (id, topic, message) => bus.systemSend(id, topic, message),
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
            this.report,
          );
    // A grant moves the fencing token counter, which the snapshot keeps.
    this.locks = new LockTable(snapshot?.token ?? 0, () => this.snapshots?.markDirty());
    this.serve();
  }

  /** Counts of entries, watches, leases and waiters. */
  stats(): StoreHostStats {
    const entries: Record<string, number> = {};
    for (const b of this.buckets.values()) entries[b.name] = b.entries.size;
    return { entries, ...this.watches.stats(), ...this.locks.stats() };
  }

  // ------------------------------------------------------------------ wiring

  private serve(): void {
    const bus = this.bus;
    const handle = (op: OpName, fn: (input: unknown, ctx: HandlerContext) => unknown) =>
      this.unsubscribe.push(bus.systemHandle(op, fn));
    handle(Op.get, (input) => this.get(input));
    handle(Op.set, (input) => this.set(input));
    handle(Op.increment, (input) => this.increment(input));
    handle(Op.delete, (input) => this.delete(input));
    handle(Op.keys, (input) => this.keys(input));
    handle(Op.watch, (input, ctx) => this.watch(input, ctx.caller));
    handle(Op.acquire, (input, ctx) => this.acquire(input, ctx));
    handle(Op.release, (input, ctx) => {
      const { n, t, k } = parseWire(Req.release, input, 'INVALID_ARGUMENT', 'lock release');
      const claim = { name: n, origin: ctx.caller, token: t, proof: k };
      return this.refused(() => this.locks.release(claim));
    });
    handle(Op.extend, (input, ctx) => {
      const { n, t, k, ttl } = parseWire(Req.extend, input, 'INVALID_ARGUMENT', 'lock extend');
      const claim = { name: n, origin: ctx.caller, token: t, proof: k };
      return { x: this.refused(() => this.locks.extend(claim, ttl)) };
    });
    for (const topic of [Op.unwatch, Op.cancel]) {
      this.unsubscribe.push(
        bus.systemSubscribe(topic, (payload, source) => this.receive(topic, payload, source)),
      );
    }
    this.unsubscribe.push(
      bus.onWorkerGone((workerId) => {
        this.watches.dropOrigin(workerId);
        this.locks.gone(workerId);
      }),
    );
    const local: LocalHost = {
      receive: (topic, payload, origin) => this.receive(topic, payload, origin),
      setLocalSink: (sink) => this.watches.setLocalSink(sink),
    };
    this.unsubscribe.push(registerHost(bus, local));
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

  /** A one-way message from a client: stop a watch, or give up on an acquire. */
  private receive(topic: string, payload: unknown, origin: Origin): void {
    try {
      if (topic === Op.unwatch) {
        const { w } = parseWire(Req.unwatch, payload, 'INVALID_ARGUMENT', 'unwatch');
        this.watches.remove(origin, w);
      } else if (topic === Op.cancel) {
        const { n, a } = parseWire(Req.cancel, payload, 'INVALID_ARGUMENT', 'lock cancel');
        this.locks.cancel(n, origin, a);
      }
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

/**
 * Whether a store's schema takes numbers (as written), so `increment` applies: `z.number()` and
 * its checks and formats, through `optional`, `nullable`, `default`, `readonly`, `catch` and the
 * input side of a `pipe`/`transform`.
 */
export function isNumberSchema(schema: Schema): boolean {
  let def = defOf(schema);
  for (let depth = 0; def !== undefined && depth < 16; depth++) {
    if (def.type === 'number') return true;
    const inner = def.innerType ?? def.in;
    def = inner === undefined ? undefined : defOf(inner);
  }
  return false;
}

interface DefLike {
  readonly type?: unknown;
  readonly innerType?: unknown;
  readonly in?: unknown;
}

function defOf(schema: unknown): DefLike | undefined {
  if (typeof schema !== 'object' || schema === null) return undefined;
  const def = (schema as { def?: unknown }).def;
  return typeof def === 'object' && def !== null ? (def as DefLike) : undefined;
}

/** Checks the host's options; returns the per-store `maxEntries`. */
function checkConfig(contract: Contract, config: StoreHostConfig): ReadonlyMap<string, number> {
  const limits = new Map<string, number>();
  const positive = (value: unknown, name: string): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `${name} must be a positive integer, got ${String(value)}`,
      );
    }
    return value;
  };
  if (config.maxEntries !== undefined) positive(config.maxEntries, 'store.maxEntries');
  if (config.maxWatchesPerProcess !== undefined) {
    positive(config.maxWatchesPerProcess, 'store.maxWatchesPerProcess');
  }
  for (const [name, limit] of Object.entries(config.limits ?? {})) {
    if (!contract.stores.has(name)) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `store.limits: '${name}' is not a store of the contract`,
      );
    }
    const max = (limit as { maxEntries?: unknown } | undefined)?.maxEntries;
    if (max !== undefined) limits.set(name, positive(max, `store.limits.${name}.maxEntries`));
  }
  const persist = config.persist;
  if (persist !== undefined) {
    if (typeof persist.file !== 'string' || persist.file.length === 0) {
      throw new BusError('INVALID_ARGUMENT', 'persist.file must be a non-empty path');
    }
    const interval = persist.intervalMs;
    if (
      interval !== undefined &&
      (typeof interval !== 'number' || !(interval > 0) || interval > 2_147_483_647)
    ) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `persist.intervalMs must be a number of ms > 0, got ${String(interval)}`,
      );
    }
  }
  return limits;
}
