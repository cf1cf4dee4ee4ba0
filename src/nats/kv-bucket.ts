/**
 * One JetStream KV bucket as a node holds it: a mirror of its last values, fed by a KV watch
 * (initial values, then every change, in stream order, with no gap: nats.js's ordered consumer,
 * re-created after a reconnect from the last sequence it delivered), and compare-and-set writes
 * made safe on the server it runs against.
 *
 * Two modes of compare-and-set (see docs/nats.md):
 * - `'stream'`: every write expects the bucket stream's last sequence (`Nats-Expected-Last-Sequence`)
 *   as this node's mirror has it, so it is decided on an exact copy of the whole bucket; on "wrong
 *   last sequence" the mirror catches up and the write is tried again. Exact on every server
 *   version (nats-server#4320 does not touch this check); writes to one bucket are serialized.
 * - `'key'`: a write expects the key's last revision (`Nats-Expected-Last-Subject-Sequence`,
 *   what KV's `update`/`create` send). Writes to different keys do not conflict; exact only on
 *   servers with the fixes of nats-server#4320 and #5644 (2.10.19 and later).
 *
 * @module
 */

import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { BusError } from '../errors.js';
import {
  type Decision,
  encodeBody,
  isWrongLastSequence,
  type MirrorChange,
  type MirrorEntry,
  namedSequence,
  parseBody,
} from './kv-entry.js';

export type { Decision, MirrorChange, MirrorEntry } from './kv-entry.js';

/** How often the mirror checks that its watch keeps up with the stream, in ms. */
const LAG_CHECK_MS = 1_000;
/** How long a write keeps trying against contention or a failover, in ms. */
const WRITE_DEADLINE_MS = 15_000;

/** One bucket, mirrored. */
export class MirroredBucket {
  private readonly entries = new Map<string, MirrorEntry>();
  /** The stream sequence up to which the mirror is exact. */
  private lastSeq = 0;
  private readonly waiters = new Set<{ seq: number; wake: () => void }>();
  private readonly listeners = new Set<(change: MirrorChange) => void>();
  private stopWatch: (() => void) | undefined;
  private closed = false;
  private generation = 0;
  private lagTimer: NodeJS.Timeout | undefined;
  private resyncedAt = 0;
  /** Writes that lost a compare-and-set and were retried (for tests and the bench). */
  retries = 0;

  private constructor(
    readonly name: string,
    private readonly kv: KV,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly mode: 'stream' | 'key',
  ) {}

  /**
   * Creates (or binds to) bucket `name` with file storage, and fills the mirror: resolves once
   * it holds every value written before it started.
   */
  static async open(
    nc: NatsConnection,
    name: string,
    replicas: number,
    mode: 'stream' | 'key',
    deadline: number,
  ): Promise<MirroredBucket> {
    const js = jetstream(nc);
    const kvm = new Kvm(js);
    let kv: KV | undefined;
    let lastError: unknown;
    while (kv === undefined) {
      try {
        kv = await kvm.create(name, { replicas, storage: 'file', history: 1 });
      } catch (error) {
        lastError = error;
        if (Date.now() > deadline) {
          throw new BusError(
            'STARTUP_FAILED',
            `natsMesh: KV bucket '${name}' could not be opened: ${(lastError as Error).message}`,
            { cause: lastError },
          );
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const jsm = await jetstreamManager(nc);
    const bucket = new MirroredBucket(name, kv, js, jsm, mode);
    const info = await jsm.streams.info(`KV_${name}`);
    for (;;) {
      try {
        await bucket.watch(info.state.last_seq, false);
        break;
      } catch (error) {
        // JetStream may still be electing leaders (a cluster starting or failing over).
        if (Date.now() > deadline) {
          throw new BusError(
            'STARTUP_FAILED',
            `natsMesh: KV bucket '${name}' cannot be watched: ${(error as Error).message}`,
            { cause: error },
          );
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    void (async () => {
      for await (const status of nc.status()) {
        if (bucket.closed) return;
        if (status.type === 'reconnect') bucket.resync();
      }
    })();
    // A watch whose consumer was lost with a server stops without telling: compare with the
    // stream's last sequence every second, and re-create it when it does not move.
    let behindAt = -1;
    bucket.lagTimer = setInterval(() => {
      jsm.streams.info(`KV_${name}`).then(
        (i) => {
          const behind = i.state.last_seq > bucket.lastSeq;
          if (behind && behindAt === bucket.lastSeq) bucket.resync();
          behindAt = behind ? bucket.lastSeq : -1;
        },
        () => {},
      );
    }, LAG_CHECK_MS);
    bucket.lagTimer.unref();
    return bucket;
  }

  /**
   * (Re-)creates the KV watch: from the start (last values), or from the revision after the last
   * one applied (every write since, in order). Resolves once the mirror has `initialSeq`.
   */
  private async watch(initialSeq: number, resume: boolean): Promise<void> {
    const generation = ++this.generation;
    this.stopWatch?.();
    const iter = await this.kv.watch(
      resume ? { key: '>', resumeFromRevision: this.lastSeq + 1 } : { key: '>' },
    );
    if (generation !== this.generation || this.closed) {
      iter.stop();
      return;
    }
    this.stopWatch = () => iter.stop();
    void (async () => {
      for await (const e of iter) {
        if (generation !== this.generation) break;
        const body = parseBody(e.value);
        const deleted = e.operation !== 'PUT';
        this.apply(
          e.key,
          e.revision,
          {
            value: deleted ? undefined : body.v,
            revision: e.revision,
            expiresAt: deleted ? undefined : body.x,
            receivedAt: performance.now(),
            deleted,
          },
          deleted ? (body.o === 'expire' ? 'expire' : 'delete') : 'set',
        );
      }
    })();
    if (initialSeq > 0) await this.until(initialSeq, WRITE_DEADLINE_MS);
  }

  /**
   * Re-creates the watch from the last revision applied: after a reconnect, or when the mirror
   * lags behind what the server says (its consumer was lost with a server). At most once a second.
   */
  resync(): void {
    const now = performance.now();
    if (this.closed || now - this.resyncedAt < 1_000) return;
    this.resyncedAt = now;
    this.watch(0, true).catch(() => {
      // JetStream not ready yet (a failover in progress): try again soon.
      this.resyncedAt = 0;
      setTimeout(() => this.resync(), 500).unref();
    });
  }

  /** Applies one write, in stream order; an old one (already applied) is skipped. */
  private apply(key: string, seq: number, entry: MirrorEntry, op: MirrorChange['op']): void {
    if (seq <= this.lastSeq) return;
    this.lastSeq = seq;
    this.entries.set(key, entry);
    for (const l of [...this.listeners]) l({ key, op, entry });
    for (const w of [...this.waiters]) if (this.lastSeq >= w.seq) w.wake();
  }

  /** Resolves once the mirror is exact up to `seq` (rejects `TIMEOUT` after `ms`). */
  until(seq: number, ms: number): Promise<void> {
    if (this.lastSeq >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        seq,
        wake: () => {
          clearTimeout(timer);
          this.waiters.delete(w);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(
          new BusError(
            'TIMEOUT',
            `KV bucket '${this.name}': not caught up to revision ${seq} within ${ms} ms`,
          ),
        );
      }, ms);
      this.waiters.add(w);
    });
  }

  /**
   * Waits until the mirror has every write the stream's leader has now (one JetStream API
   * request): what is read next is current as of this call.
   */
  async sync(): Promise<void> {
    let last: number;
    try {
      last = (await this.jsm.streams.info(`KV_${this.name}`)).state.last_seq;
    } catch {
      return;
    }
    await this.until(last, 2_000).catch(() => this.resync());
  }

  /** Calls `listener` with every change from now on. Returns the remover. */
  onChange(listener: (change: MirrorChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The entry of `key`, tombstones included (undefined if never written). */
  raw(key: string): MirrorEntry | undefined {
    return this.entries.get(key);
  }

  /** The live entry of `key`: not deleted, not expired. */
  live(key: string, now = Date.now()): MirrorEntry | undefined {
    const e = this.entries.get(key);
    if (e === undefined || e.deleted) return undefined;
    if (e.expiresAt !== undefined && e.expiresAt <= now) return undefined;
    return e;
  }

  /** Every live entry, by key. */
  *current(now = Date.now()): Iterable<[string, MirrorEntry]> {
    for (const [k, e] of this.entries) {
      if (!e.deleted && !(e.expiresAt !== undefined && e.expiresAt <= now)) yield [k, e];
    }
  }

  /** The bucket's revision as this node has it (the last stream sequence applied). */
  get revision(): number {
    return this.lastSeq;
  }

  /**
   * A compare-and-set write of `key`: `decide` looks at the current entry (as of an exact
   * revision of the bucket) and says what to write; the write is made only if nothing changed
   * since (see the modes above), else the mirror catches up and `decide` runs again.
   * @throws BusError `TIMEOUT` when contention or a failover outlasts 15 s; what `decide` throws.
   */
  async write<R>(
    key: string,
    decide: (current: MirrorEntry | undefined) => Decision<R>,
  ): Promise<R> {
    const deadline = performance.now() + WRITE_DEADLINE_MS;
    let synced = false;
    for (;;) {
      if (this.closed) throw new BusError('CLOSED', `KV bucket '${this.name}': closed`);
      const seq = this.lastSeq;
      const current = this.raw(key);
      const decision = decide(this.live(key));
      if ('answer' in decision) {
        // An answer without a write (a refused compare-and-set) is given on a current copy.
        if (synced) return decision.answer;
        await this.sync();
        synced = true;
        continue;
      }
      const h = headers();
      let body: Uint8Array;
      if ('put' in decision) {
        body = encodeBody({ v: decision.put, x: decision.expiresAt });
      } else {
        h.set('KV-Operation', 'DEL');
        body = encodeBody({ o: decision.del });
      }
      const expect =
        this.mode === 'stream'
          ? { lastSequence: seq }
          : { lastSubjectSequence: current?.revision ?? 0 };
      // One id per attempt: a retry after a lost ack is deduplicated by the server, not applied twice.
      const msgID = `${this.name}.${key}.${seq}.${Math.random().toString(36).slice(2)}`;
      let ack: { seq: number } | undefined;
      let lost: unknown;
      while (ack === undefined) {
        const remaining = deadline - performance.now();
        try {
          ack = await this.js.publish(`$KV.${this.name}.${key}`, body, {
            headers: h,
            expect,
            msgID,
            timeout: Math.max(1_000, Math.min(5_000, remaining)),
          });
        } catch (error) {
          if (remaining <= 0) {
            throw new BusError(
              'TIMEOUT',
              `KV bucket '${this.name}' key '${key}': the write did not succeed within ${WRITE_DEADLINE_MS} ms`,
              { cause: error },
            );
          }
          if (isWrongLastSequence(error)) {
            lost = error;
            break;
          }
          if (this.closed) throw new BusError('CLOSED', `KV bucket '${this.name}': closed`);
          // A timeout or a failover in progress: the same attempt again.
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      if (ack === undefined) {
        this.retries++;
        // Lost the compare-and-set: wait for the mirror to have the write that won (the server
        // names the sequence), then decide again. A mirror that does not catch up (its consumer
        // was lost with a server) re-creates its watch from the last revision it has.
        const named = namedSequence(lost) ?? seq + 1;
        const caughtUp = await this.until(named, 750).then(
          () => true,
          () => false,
        );
        if (!caughtUp) {
          this.resync();
          await this.until(named, 2_000).catch(() => {});
        }
        continue;
      }
      if (this.mode === 'stream' && ack.seq === seq + 1) {
        // Decided on the whole bucket at `seq`, written at seq + 1: the mirror is exact there.
        const now = performance.now();
        const entry: MirrorEntry =
          'put' in decision
            ? {
                value: decision.put,
                revision: ack.seq,
                expiresAt: decision.expiresAt,
                receivedAt: now,
                deleted: false,
              }
            : {
                value: undefined,
                revision: ack.seq,
                expiresAt: undefined,
                receivedAt: now,
                deleted: true,
              };
        this.apply(key, ack.seq, entry, 'put' in decision ? 'set' : decision.del);
      } else {
        await this.until(ack.seq, Math.max(1_000, deadline - performance.now())).catch(() => {
          this.resync();
        });
      }
      return decision.result(ack.seq);
    }
  }

  /** Stops the watch; writes in progress reject with `CLOSED`. */
  close(): void {
    this.closed = true;
    clearInterval(this.lagTimer);
    this.stopWatch?.();
    this.listeners.clear();
    for (const w of this.waiters) w.wake();
    this.waiters.clear();
  }
}
