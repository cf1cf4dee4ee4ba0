/**
 * The store host of a mesh node: the state protocol (`$state.<verb>`, the same as the primary's
 * own host serves, so workers are unchanged) served from JetStream KV buckets shared by every
 * node: one bucket per store (`<prefix>_s_<store>`) and one for locks (`<prefix>_locks`), file
 * storage, mirrored by each node (kv-bucket.ts). Revisions are KV revisions; every
 * compare-and-set is the bucket's (see kv-bucket.ts for the two modes).
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Contract, Schema } from '../contract.js';
import type { ExtensionContext } from '../core/extension.js';
import type { LocalRoutes } from '../core/mesh.js';
import type { HandlerContext, Origin } from '../core/types.js';
import { BusError } from '../errors.js';
import { DEFAULT_MAX_DEPTH } from '../protocol/codec.js';
import type { StateHost } from '../state/extension.js';
import { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_PAYLOAD_BYTES } from '../state/host-config.js';
import { type ChangeMessage, parseWire, Req, Verb, type WireEntry } from '../state/protocol.js';
import { isNumberSchema, keepable } from '../state/values.js';
import { matches, WatchTable } from '../state/watches.js';
import { type MirrorEntry, MirroredBucket } from './kv-bucket.js';
import { fromKvKey, kvToken } from './kv-keys.js';
import { KvLocks } from './kv-locks.js';
import { atLeast, type ResolvedMeshOptions } from './options.js';

/** How often each node deletes the entries whose TTL has passed, in ms. */
const SWEEP_MS = 1_000;

interface Store {
  readonly bucket: MirroredBucket;
  readonly schema: Schema;
  readonly numeric: boolean;
}

/** The mesh's store host. */
export class KvStateHost implements StateHost {
  private readonly stores = new Map<string, Store>();
  private ctx: ExtensionContext | undefined;
  private local: LocalRoutes | undefined;
  private readonly watches: WatchTable;
  private readonly unsubscribe: Array<() => void> = [];
  private sweeper: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private readonly limits = {
    maxDepth: DEFAULT_MAX_DEPTH,
    maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
  };

  /**
   * Opens (creating them if need be) the buckets of `contract`'s stores and the locks' bucket,
   * and fills their mirrors.
   */
  static async open(
    nc: NatsConnection,
    contract: Contract,
    options: ResolvedMeshOptions,
    report: (error: BusError) => void,
  ): Promise<KvStateHost> {
    const version = nc.info?.version ?? '0.0.0';
    const mode =
      options.casMode === 'auto'
        ? atLeast(version, 2, 10, 19)
          ? 'key'
          : 'stream'
        : options.casMode;
    const replicas = options.replicas ?? (nc.info?.cluster === undefined ? 1 : 3);
    const deadline = Date.now() + options.startTimeoutMs;
    const open = (name: string) =>
      MirroredBucket.open(nc, `${options.prefix}_${name}`, replicas, mode, deadline);
    const stores = new Map<string, Store>();
    for (const [name, schema] of contract.stores) {
      stores.set(name, {
        bucket: await open(`s_${kvToken(name, false)}`),
        schema,
        numeric: isNumberSchema(schema),
      });
    }
    const locks = await open('locks');
    return new KvStateHost(stores, new KvLocks(locks), mode, report, open);
  }

  /** Opens another bucket of the mesh (`<prefix>_<name>`), in the same mode and replicas. */
  openBucket(name: string): Promise<MirroredBucket> {
    return this.opener(name);
  }

  private constructor(
    stores: Map<string, Store>,
    private readonly locks: KvLocks,
    /** The compare-and-set mode in use. */
    readonly mode: 'stream' | 'key',
    private readonly reportTo: (error: BusError) => void,
    private readonly opener: (name: string) => Promise<MirroredBucket>,
  ) {
    for (const [k, v] of stores) this.stores.set(k, v);
    this.watches = new WatchTable(
      (to, verb, message) => this.ctx?.send(to, verb, message) ?? false,
    );
    for (const [name, store] of this.stores) {
      this.unsubscribe.push(
        store.bucket.onChange((c) =>
          this.watches.changed(name, fromKvKey(c.key), c.op, c.entry.value, c.entry.revision),
        ),
      );
    }
  }

  get isClosed(): boolean {
    return this.closing !== undefined;
  }

  /** @internal The buckets (tests read their retry counts). */
  bucket(store: string): MirroredBucket | undefined {
    return this.stores.get(store)?.bucket;
  }

  /** The hub's routes (the workers that go away lose their leases). */
  attach(local: LocalRoutes): void {
    this.local = local;
  }

  serve(ctx: ExtensionContext): void {
    if (this.ctx !== undefined)
      throw new BusError('INVALID_ARGUMENT', 'a store host serves one bus, once');
    this.ctx = ctx;
    const handle = (verb: string, fn: (input: unknown, context: HandlerContext) => unknown) =>
      this.unsubscribe.push(ctx.handle(verb, fn, { callers: 'any' }));
    handle(Verb.get, async (input) => {
      const { s, k } = parseWire(Req.get, input, 'INVALID_ARGUMENT', 'store get');
      const bucket = this.store(s).bucket;
      await bucket.sync();
      return wire(bucket.live(kvToken(k, true)));
    });
    handle(Verb.set, (input) => this.set(input));
    handle(Verb.increment, (input) => this.increment(input));
    handle(Verb.delete, (input) => this.delete(input));
    handle(Verb.keys, async (input) => {
      const { s, p } = parseWire(Req.keys, input, 'INVALID_ARGUMENT', 'store keys');
      await this.store(s).bucket.sync();
      const keys: string[] = [];
      for (const [k] of this.store(s).bucket.current()) {
        const key = fromKvKey(k);
        if (p === undefined || key.startsWith(p)) keys.push(key);
      }
      return keys.sort();
    });
    handle(Verb.watch, (input, context) => this.watch(input, context.caller));
    ctx.on(Verb.unwatch, (payload, origin) => {
      const parsed = Req.unwatch.safeParse(payload);
      if (parsed.success) this.watches.remove(origin, parsed.data.w);
    });
    this.locks.serve(ctx);
    this.unsubscribe.push(
      ctx.peers.onGone((id) => {
        this.watches.dropOrigin(id);
        this.locks.gone(id);
      }),
    );
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  private store(name: string): Store {
    const s = this.stores.get(name);
    if (s === undefined)
      throw new BusError('INVALID_ARGUMENT', `'${name}' is not a store of the contract`);
    return s;
  }

  private set(input: unknown): Promise<unknown> {
    const req = parseWire(Req.set, input, 'INVALID_ARGUMENT', 'store set');
    const store = this.store(req.s);
    if (req.v === undefined) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `store '${req.s}' key '${req.k}': a value cannot be undefined (use delete)`,
      );
    }
    const value = keepable(store.schema, `store '${req.s}' key '${req.k}'`, req.v, this.limits);
    const expiresAt = req.ttl === undefined ? undefined : Date.now() + req.ttl;
    return store.bucket.write<unknown>(kvToken(req.k, true), (cur) => {
      if (req.if !== undefined && (cur?.revision ?? 0) !== req.if)
        return { answer: { ok: false, cur: wire(cur) } };
      if (cur === undefined) this.ensureRoom(store, req.s, req.k);
      return {
        put: value,
        expiresAt,
        result: (r) => (expiresAt === undefined ? { ok: true, r } : { ok: true, r, x: expiresAt }),
      };
    });
  }

  private increment(input: unknown): Promise<unknown> {
    const req = parseWire(Req.increment, input, 'INVALID_ARGUMENT', 'store increment');
    const store = this.store(req.s);
    if (!store.numeric) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `store '${req.s}': increment needs a store of numbers (its schema is not a number)`,
      );
    }
    return store.bucket.write<unknown>(kvToken(req.k, true), (cur) => {
      const old = cur === undefined ? 0 : cur.value;
      if (typeof old !== 'number') {
        throw new BusError(
          'INVALID_ARGUMENT',
          `store '${req.s}' key '${req.k}': increment needs a number, the entry holds a ${typeof old}`,
        );
      }
      if (cur === undefined) this.ensureRoom(store, req.s, req.k);
      const v = keepable(
        store.schema,
        `store '${req.s}' key '${req.k}'`,
        old + req.by,
        this.limits,
      );
      const expiresAt = req.ttl === undefined ? cur?.expiresAt : Date.now() + req.ttl;
      return { put: v, expiresAt, result: (r) => ({ v, r }) };
    });
  }

  private delete(input: unknown): Promise<unknown> {
    const req = parseWire(Req.delete, input, 'INVALID_ARGUMENT', 'store delete');
    return this.store(req.s).bucket.write<unknown>(kvToken(req.k, true), (cur) => {
      if (req.if !== undefined && (cur?.revision ?? 0) !== req.if)
        return { answer: { ok: false, cur: wire(cur) } };
      if (cur === undefined) return { answer: { ok: true, r: 0 } };
      return { del: 'delete', result: (r) => ({ ok: true, r }) };
    });
  }

  /** `STORE_FULL` at `maxEntries` (exact in `'stream'` mode: decided on the whole bucket). */
  private ensureRoom(store: Store, name: string, key: string): void {
    let n = 0;
    for (const _ of store.bucket.current()) n++;
    if (n >= DEFAULT_MAX_ENTRIES) {
      throw new BusError(
        'STORE_FULL',
        `store '${name}' is full (maxEntries ${DEFAULT_MAX_ENTRIES}): key '${key}' was not written`,
      );
    }
  }

  private watch(input: unknown, origin: Origin): number {
    const req = parseWire(Req.watch, input, 'INVALID_ARGUMENT', 'store watch');
    const store = this.store(req.s);
    if (req.k !== undefined && req.p !== undefined) {
      throw new BusError('INVALID_ARGUMENT', 'watch: give a key or a prefix, not both');
    }
    const reg = { origin, id: req.w, store: req.s, key: req.k, prefix: req.p };
    this.watches.add(reg);
    if (req.init === true) {
      for (const [k, e] of store.bucket.current()) {
        const key = fromKvKey(k);
        if (!matches(reg, key)) continue;
        const message: ChangeMessage = {
          w: [reg.id],
          s: req.s,
          k: key,
          o: 'set',
          v: e.value,
          r: e.revision,
        };
        this.watches.send(origin, message);
      }
    }
    return store.bucket.revision;
  }

  /** Deletes the entries whose TTL has passed (each node tries; the compare-and-set picks one). */
  private sweep(): void {
    const now = Date.now();
    for (const store of this.stores.values()) {
      for (const [k, e] of store.bucket.current(Number.NEGATIVE_INFINITY)) {
        if (e.expiresAt === undefined || e.expiresAt > now) continue;
        void store.bucket
          .write(k, () => {
            const cur = store.bucket.raw(k);
            if (cur === undefined || cur.deleted || cur.revision !== e.revision)
              return { answer: undefined };
            return { del: 'expire', result: () => undefined };
          })
          .catch(() => {});
      }
    }
  }

  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    for (const u of this.unsubscribe.splice(0)) u();
    this.watches.clear();
    this.locks.close();
    for (const s of this.stores.values()) s.bucket.close();
    this.closing = Promise.resolve();
    void this.local;
    void this.reportTo;
    return this.closing;
  }
}

function wire(e: MirrorEntry | undefined): WireEntry | null {
  if (e === undefined) return null;
  return e.expiresAt === undefined
    ? { v: e.value, r: e.revision }
    : { v: e.value, r: e.revision, x: e.expiresAt };
}
