/**
 * The hub side of the state extension: the store host, which holds the stores' entries (with
 * their revisions and TTL expiry: entries.ts), watches by process, the lock table, and snapshot
 * persistence. It serves the state protocol (`$state.<verb>`, callable by every process) on the
 * hub's extension context; each operation is a synchronous function of the current state, so the
 * hub applies them one at a time, in arrival order. Its snapshot is loaded before it serves
 * ({@link StoreHost.load}).
 *
 * @module
 */
import type { Contract } from '../contract.js';
import type { Extension, ExtensionContext } from '../core/extension.js';
import type { HandlerContext, Origin } from '../core/types.js';
import { BusError } from '../errors.js';
import { DEFAULT_MAX_DEPTH } from '../protocol/codec.js';
import { StoreEntries } from './entries.js';
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
import { preparePersistDir, readSnapshot, SnapshotWriter } from './persist.js';
import { type ChangeMessage, parseWire, Req, Verb } from './protocol.js';
import type { SnapshotData } from './snapshot.js';
import type { StateApi } from './types.js';
import { matches, WatchTable } from './watches.js';

export {
  DEFAULT_MAX_ENTRIES,
  DEFAULT_PERSIST_INTERVAL_MS,
  type StoreHostConfig,
} from './host-config.js';

import { warn } from '../util/warn.js';

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

type VerbName = (typeof Verb)[keyof typeof Verb];

/**
 * The hub's store host. Loaded by `startCluster` before any fork and served by the state
 * extension installed on the primary's bus; closed by `app.close()` before the bus (and by the
 * extension's close, if not closed before).
 */
export class StoreHost {
  /** Every store's entries, revisions and expiries. */
  private readonly stores: StoreEntries;
  /** TTL expiry of every store: one heap and one timer. */
  /** @internal The TTL queue (tests read its size). */
  readonly expiry: ExpiryQueue;
  /** @internal The watch index (tests fill it directly). */
  readonly watches: WatchTable;
  private readonly locks: LockTable;
  private readonly reportTo: ((error: BusError) => void) | undefined;
  private readonly observe: ((store: unknown, op: string) => void) | undefined;
  /** The hub's extension context, once the host serves on it. */
  private ctx: ExtensionContext | undefined;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly snapshots: SnapshotWriter | undefined;
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
    this.observe = config.observe;
    this.watches = new WatchTable(
      (to, verb, message) => this.ctx?.send(to, verb, message) ?? false,
      config.maxWatchesPerProcess,
    );
    this.expiry = new ExpiryQueue(() => this.stores.sweep());
    this.stores = new StoreEntries(
      contract,
      (name) => limits.get(name) ?? config.maxEntries ?? DEFAULT_MAX_ENTRIES,
      {
        maxDepth: config.maxDepth ?? DEFAULT_MAX_DEPTH,
        maxPayloadBytes: config.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
      },
      this.expiry,
      (store, key, op, value, revision) => this.changed(store, key, op, value, revision),
    );
    if (snapshot !== undefined) this.stores.load(snapshot.stores);
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

  stats(): StoreHostStats {
    return { entries: this.stores.counts(), ...this.watches.stats(), ...this.locks.stats() };
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
    const observe = this.observe;
    const handle = (verb: VerbName, fn: (input: unknown, context: HandlerContext) => unknown) =>
      this.unsubscribe.push(
        ctx.handle(
          verb,
          observe === undefined
            ? fn
            : (input, c) => {
                observe((input as { s?: unknown } | null)?.s, verb);
                return fn(input, c);
              },
          { callers: 'any' },
        ),
      );
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
    else warn(error);
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
  // ------------------------------------------------------------------ operations

  private get(input: unknown): ReturnType<StoreEntries['get']> {
    const { s, k } = parseWire(Req.get, input, 'INVALID_ARGUMENT', 'store get');
    return this.stores.get(s, k);
  }

  private set(input: unknown): ReturnType<StoreEntries['set']> {
    const req = parseWire(Req.set, input, 'INVALID_ARGUMENT', 'store set');
    return this.stores.set(req.s, req.k, req.v, req.if, req.ttl);
  }

  private increment(input: unknown): ReturnType<StoreEntries['increment']> {
    const req = parseWire(Req.increment, input, 'INVALID_ARGUMENT', 'store increment');
    return this.stores.increment(req.s, req.k, req.by, req.ttl);
  }

  private delete(input: unknown): ReturnType<StoreEntries['delete']> {
    const req = parseWire(Req.delete, input, 'INVALID_ARGUMENT', 'store delete');
    return this.stores.delete(req.s, req.k, req.if);
  }

  private keys(input: unknown): string[] {
    const { s, p } = parseWire(Req.keys, input, 'INVALID_ARGUMENT', 'store keys');
    return this.stores.keys(s, p);
  }

  private watch(input: unknown, origin: Origin): number {
    const req = parseWire(Req.watch, input, 'INVALID_ARGUMENT', 'store watch');
    const b = this.stores.bucket(req.s);
    if (req.k !== undefined && req.p !== undefined) {
      throw new BusError('INVALID_ARGUMENT', 'watch: give a key or a prefix, not both');
    }
    const reg = { origin, id: req.w, store: b.name, key: req.k, prefix: req.p };
    this.watches.add(reg);
    if (req.init === true) {
      for (const [key, e] of this.stores.current(b, (k) => matches(reg, k))) {
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

  // ------------------------------------------------------------------ changes

  /** A change: the snapshot is dirty, and the watchers of `key` are told. */
  private changed(
    store: string,
    key: string,
    op: ChangeMessage['o'],
    value: unknown,
    revision: number,
  ): void {
    this.snapshots?.markDirty();
    this.watches.changed(store, key, op, value, revision);
  }

  // ------------------------------------------------------------------ persistence

  private snapshot(): SnapshotData {
    const now = Date.now();
    return { savedAt: now, token: this.locks.token, stores: this.stores.snapshot(now) };
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
