/**
 * Locks of a mesh, on one KV bucket (`<prefix>_locks`): a lock is a key; its value names the
 * lease (`{ k: proof, ttl, t: token }`). Acquire is create-if-absent (absent, deleted, or its
 * lease over); extend and release are compare-and-set on the entry's revision (made safe as
 * kv-bucket.ts says). The fencing token is the KV revision of the acquiring write: it only ever
 * increases.
 *
 * A lease is over, for every node, `ttl` ms after that node received its last write (acquire or
 * extend), by that node's own monotonic clock; the holder's `expiresAt` is counted from before
 * the write was sent, so the holder always stops first. No clock is compared across hosts.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { ExtensionContext } from '../core/extension.js';
import type { HandlerContext, Origin } from '../core/types.js';
import { BusError } from '../errors.js';
import { parseWire, Req, Verb } from '../state/protocol.js';
import type { MirrorEntry, MirroredBucket } from './kv-bucket.js';
import { kvToken } from './kv-keys.js';

interface LeaseValue {
  k: string;
  ttl: number;
  t?: number;
}

/** The locks' host side of one node. */
export class KvLocks {
  /** Leases granted to this node's processes, to end them when their holder goes away. */
  private readonly held = new Map<Origin, Map<string, { t: number; k: string }>>();
  /** Acquires waiting, by `<origin>:<a>`, to cancel them. */
  private readonly waiting = new Map<string, AbortController>();
  private closed = false;

  constructor(readonly bucket: MirroredBucket) {}

  serve(ctx: ExtensionContext): void {
    ctx.handle(Verb.acquire, (input, c) => this.acquire(input, c), { callers: 'any' });
    ctx.handle(
      Verb.release,
      (input, c) => {
        const { n, t, k } = parseWire(Req.release, input, 'INVALID_ARGUMENT', 'lock release');
        return this.release(n, t, k, c.caller);
      },
      { callers: 'any' },
    );
    ctx.handle(
      Verb.extend,
      (input) => {
        const { n, t, k, ttl } = parseWire(Req.extend, input, 'INVALID_ARGUMENT', 'lock extend');
        return this.extend(n, t, k, ttl);
      },
      { callers: 'any' },
    );
    ctx.on(Verb.cancel, (payload, origin) => {
      const parsed = Req.cancel.safeParse(payload);
      if (!parsed.success) return;
      this.waiting.get(`${origin}:${parsed.data.a}`)?.abort(new BusError('ABORTED', 'cancelled'));
    });
  }

  /** Whether entry `e` holds a lease that is not over (as this node sees it). */
  private live(e: MirrorEntry | undefined): LeaseValue | undefined {
    if (e === undefined) return undefined;
    const v = e.value as LeaseValue | undefined;
    if (v === undefined || typeof v.ttl !== 'number') return undefined;
    return performance.now() < e.receivedAt + v.ttl ? v : undefined;
  }

  private async acquire(
    input: unknown,
    c: HandlerContext,
  ): Promise<{ t: number; x: number; k: string }> {
    const { n, a, ttl, wait } = parseWire(Req.acquire, input, 'INVALID_ARGUMENT', 'lock acquire');
    const key = kvToken(n, true);
    const deadline = performance.now() + wait;
    const controller = new AbortController();
    const id = `${c.caller}:${a}`;
    this.waiting.set(id, controller);
    const onAbort = () => controller.abort(c.signal.reason);
    c.signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (this.closed) throw new BusError('CLOSED', `lock '${n}': the store host closed`);
        if (controller.signal.aborted) {
          throw new BusError('ABORTED', `lock '${n}': the caller gave up waiting`);
        }
        const proof = randomBytes(12).toString('base64url');
        const sentAt = Date.now();
        const grant = await this.bucket.write(key, (cur) => {
          if (
            this.live(this.bucket.raw(key)) !== undefined ||
            (cur !== undefined && this.live(cur))
          ) {
            return { answer: undefined };
          }
          const value: LeaseValue = { k: proof, ttl };
          return { put: value, result: (r: number) => ({ t: r, x: sentAt + ttl, k: proof }) };
        });
        if (grant !== undefined) {
          if (controller.signal.aborted) {
            // Granted after the caller gave up: free it at once.
            await this.release(n, grant.t, grant.k, c.caller).catch(() => false);
            throw new BusError('ABORTED', `lock '${n}': the caller gave up waiting`);
          }
          const mine = this.held.get(c.caller) ?? new Map<string, { t: number; k: string }>();
          this.held.set(c.caller, mine);
          mine.set(n, { t: grant.t, k: grant.k });
          return grant;
        }
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new BusError(
            'LOCK_TIMEOUT',
            `lock '${n}' was not acquired within ${wait} ms (another holder kept it)`,
          );
        }
        await this.changeOrExpiry(key, left, controller.signal);
      }
    } finally {
      this.waiting.delete(id);
      c.signal.removeEventListener('abort', onAbort);
    }
  }

  /** Waits for a change of `key`, the end of its lease, `ms`, or an abort. */
  private changeOrExpiry(key: string, ms: number, signal: AbortSignal): Promise<void> {
    const e = this.bucket.raw(key);
    const v = e?.value as LeaseValue | undefined;
    const until =
      e !== undefined && v !== undefined ? e.receivedAt + v.ttl - performance.now() : ms;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        off();
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, Math.min(ms, until + 1)));
      const off = this.bucket.onChange((change) => {
        if (change.key === key) done();
      });
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private expired(n: string, t: number): BusError {
    return new BusError(
      'LEASE_EXPIRED',
      `lock '${n}': lease ${t} has ended (its ttlMs passed, or it was released); acquire the lock again`,
    );
  }

  private async extend(
    n: string,
    t: number,
    k: string | undefined,
    ttl: number,
  ): Promise<{ x: number }> {
    const key = kvToken(n, true);
    const sentAt = Date.now();
    return this.bucket.write(key, (cur) => {
      const v = this.live(cur);
      if (v === undefined || (v.t ?? cur?.revision) !== t || v.k !== k) throw this.expired(n, t);
      const value: LeaseValue = { k: v.k, ttl, t };
      return { put: value, result: () => ({ x: sentAt + ttl }) };
    });
  }

  private async release(
    n: string,
    t: number,
    k: string | undefined,
    origin: Origin,
  ): Promise<boolean> {
    const key = kvToken(n, true);
    this.held.get(origin)?.delete(n);
    return this.bucket.write<boolean>(key, (cur) => {
      const v = this.live(cur);
      if (v === undefined || (v.t ?? cur?.revision) !== t || v.k !== k) return { answer: false };
      return { del: 'delete', result: () => true };
    });
  }

  /** A process of this node went away: its leases are released. */
  gone(origin: Origin): void {
    const mine = this.held.get(origin);
    if (mine === undefined) return;
    this.held.delete(origin);
    for (const [n, { t, k }] of mine) void this.release(n, t, k, origin).catch(() => false);
  }

  close(): void {
    this.closed = true;
    for (const c of this.waiting.values()) c.abort(new BusError('CLOSED', 'the store host closed'));
    this.waiting.clear();
    this.bucket.close();
  }
}
