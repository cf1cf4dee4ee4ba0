/**
 * The hub side: the data of the stores, apart from the protocol that serves it. Each store's
 * entries and revision counter, compare-and-set (`ifRevision`), `maxEntries`, TTL expiry (on the
 * host's one heap and timer, for every store), and the cut a snapshot is made of or loaded from.
 * Every change is told to `onChange` (the host marks the snapshot dirty and tells the watchers).
 * Operations are synchronous; the store host applies them one at a time, in arrival order.
 *
 * @module
 */
import type { Contract, Schema } from '../contract.js';
import { BusError } from '../errors.js';
import type { ExpiryQueue } from './expiry.js';
import type { ChangeMessage, WireEntry } from './protocol.js';
import type { SnapshotData, SnapshotEntry } from './snapshot.js';
import { isNumberSchema, keepable, type ValueLimits } from './values.js';

/** One entry of a store: its value as kept, its revision, its expiry (epoch ms) if it has one. */
export interface Entry {
  readonly value: unknown;
  readonly revision: number;
  readonly expiresAt: number | undefined;
}

/** One store: its schema, its limit, its entries and its revision counter. */
export interface Bucket {
  readonly name: string;
  readonly schema: Schema;
  /** Whether the schema takes numbers: `increment` is allowed. */
  readonly numeric: boolean;
  readonly maxEntries: number;
  readonly entries: Map<string, Entry>;
  revision: number;
}

/** Told of every change of an entry: a write (`set`), a `delete` or an `expire`. */
export type OnChange = (
  store: string,
  key: string,
  op: ChangeMessage['o'],
  value: unknown,
  revision: number,
) => void;

/** The entries of every store of a contract, with their revisions and expiries. */
export class StoreEntries {
  private readonly buckets = new Map<string, Bucket>();
  /** Entries that have an expiry, every store: to tell when stale heap items pile up. */
  private ttlEntries = 0;

  /**
   * @param maxEntriesOf - the `maxEntries` of a store, by name.
   * @param valueLimits - what a kept value must fit: the bus's limits.
   * @param expiry - the TTL heap and its timer, whose owner calls {@link sweep} when it fires
   *   (and clears it on close).
   * @param onChange - told of every change, after it is made.
   */
  constructor(
    contract: Contract,
    maxEntriesOf: (store: string) => number,
    private readonly valueLimits: ValueLimits,
    private readonly expiry: ExpiryQueue,
    private readonly onChange: OnChange,
  ) {
    for (const [name, schema] of contract.stores) {
      this.buckets.set(name, {
        name,
        schema,
        numeric: isNumberSchema(schema),
        maxEntries: maxEntriesOf(name),
        entries: new Map(),
        revision: 0,
      });
    }
  }

  /** Live entries (expired ones not yet swept included), by store. */
  counts(): Record<string, number> {
    const entries: Record<string, number> = {};
    for (const b of this.buckets.values()) entries[b.name] = b.entries.size;
    return entries;
  }

  /** The store `name`; throws `INVALID_ARGUMENT` when the contract has no such store. */
  bucket(name: string): Bucket {
    const b = this.buckets.get(name);
    if (b === undefined) {
      throw new BusError('INVALID_ARGUMENT', `'${name}' is not a store of the contract`);
    }
    return b;
  }

  // ------------------------------------------------------------------ operations

  get(store: string, key: string): WireEntry | null {
    return wire(this.live(this.bucket(store), key));
  }

  set(
    store: string,
    key: string,
    v: unknown,
    ifRevision: number | undefined,
    ttlMs: number | undefined,
  ): { ok: true; r: number; x?: number } | { ok: false; cur: WireEntry | null } {
    const b = this.bucket(store);
    if (v === undefined) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `store '${b.name}' key '${key}': a value cannot be undefined (use delete)`,
      );
    }
    const value = this.validate(b, key, v);
    const cur = this.live(b, key);
    if (ifRevision !== undefined && (cur?.revision ?? 0) !== ifRevision) {
      return { ok: false, cur: wire(cur) };
    }
    if (cur === undefined) this.ensureRoom(b, key);
    const expiresAt = ttlMs === undefined ? undefined : Date.now() + ttlMs;
    const revision = this.write(b, key, value, expiresAt);
    return expiresAt === undefined
      ? { ok: true, r: revision }
      : { ok: true, r: revision, x: expiresAt };
  }

  increment(
    store: string,
    key: string,
    by: number,
    ttlMs: number | undefined,
  ): { v: unknown; r: number; x?: number } {
    const b = this.bucket(store);
    if (!b.numeric) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `store '${b.name}': increment needs a store of numbers (its schema is not a number)`,
      );
    }
    const cur = this.live(b, key);
    const old = cur === undefined ? 0 : cur.value;
    if (typeof old !== 'number') {
      throw new BusError(
        'INVALID_ARGUMENT',
        `store '${b.name}' key '${key}': increment needs a number, the entry holds a ${typeof old}`,
      );
    }
    const next = this.validate(b, key, old + by);
    if (cur === undefined) this.ensureRoom(b, key);
    const expiresAt =
      cur !== undefined ? cur.expiresAt : ttlMs === undefined ? undefined : Date.now() + ttlMs;
    const r = this.write(b, key, next, expiresAt);
    return expiresAt === undefined ? { v: next, r } : { v: next, r, x: expiresAt };
  }

  delete(
    store: string,
    key: string,
    ifRevision: number | undefined,
  ): { ok: true; r: number } | { ok: false; cur: WireEntry | null } {
    const b = this.bucket(store);
    const cur = this.live(b, key);
    if (ifRevision !== undefined && (cur?.revision ?? 0) !== ifRevision) {
      return { ok: false, cur: wire(cur) };
    }
    if (cur === undefined) return { ok: true, r: 0 };
    return { ok: true, r: this.remove(b, key, cur, 'delete') };
  }

  keys(store: string, prefix: string | undefined): string[] {
    const b = this.bucket(store);
    const now = Date.now();
    const keys: string[] = [];
    const due: string[] = [];
    for (const [key, e] of b.entries) {
      if (prefix !== undefined && !key.startsWith(prefix)) continue;
      if (e.expiresAt !== undefined && e.expiresAt <= now) due.push(key);
      else keys.push(key);
    }
    for (const key of due) this.live(b, key, now);
    return keys.sort();
  }

  /** The unexpired entries of `b` whose key passes `filter`, oldest revision first. */
  current(b: Bucket, filter: (key: string) => boolean): Array<[string, Entry]> {
    const now = Date.now();
    const found: Array<[string, Entry]> = [];
    for (const [key, e] of b.entries) {
      if (filter(key) && (e.expiresAt === undefined || e.expiresAt > now)) {
        found.push([key, e]);
      }
    }
    found.sort((x, y) => x[1].revision - y[1].revision);
    return found;
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
    this.onChange(b.name, key, 'set', value, revision);
    return revision;
  }

  /** Removes an entry (`delete` or `expire`): a new revision, its watchers told. */
  private remove(b: Bucket, key: string, e: Entry, op: 'delete' | 'expire'): number {
    b.entries.delete(key);
    if (e.expiresAt !== undefined) this.ttlEntries--;
    const revision = ++b.revision;
    this.onChange(b.name, key, op, undefined, revision);
    return revision;
  }

  /** Expires every entry whose TTL has passed (the one sweep timer, and `STORE_FULL` checks). */
  sweep(): void {
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

  // ------------------------------------------------------------------ snapshots

  /** Takes the entries of a snapshot's stores (those still in the contract, and unexpired). */
  load(stores: SnapshotData['stores']): void {
    const now = Date.now();
    for (const [name, data] of Object.entries(stores)) {
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

  /** Every store's revision and unexpired entries at `now`, for a snapshot. */
  snapshot(now: number): Record<string, { revision: number; entries: SnapshotEntry[] }> {
    const stores: Record<string, { revision: number; entries: SnapshotEntry[] }> = {};
    for (const b of this.buckets.values()) {
      const entries: SnapshotEntry[] = [];
      for (const [key, e] of b.entries) {
        if (e.expiresAt !== undefined && e.expiresAt <= now) continue;
        entries.push([key, e.value, e.revision, e.expiresAt ?? null]);
      }
      stores[b.name] = { revision: b.revision, entries };
    }
    return stores;
  }
}

// ---------------------------------------------------------------------------------------------

function wire(e: Entry | undefined): WireEntry | null {
  if (e === undefined) return null;
  return e.expiresAt === undefined
    ? { v: e.value, r: e.revision }
    : { v: e.value, r: e.revision, x: e.expiresAt };
}
