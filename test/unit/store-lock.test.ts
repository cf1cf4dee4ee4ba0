/**
 * Cluster-wide locks over in-memory links: mutual exclusion, FIFO, fencing tokens, waitMs,
 * abort, TTL, and a holder that goes away; durations past Node's timer limit; only the holder
 * releases or extends (forged frames refused); `lease.extend`.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { BusError, defineContract, type Lease } from '../../src/index.js';
import { StoreHost } from '../../src/state/host.js';
import { LockTable } from '../../src/state/lock.js';
import { deadline, MAX_TIMER_MS } from '../../src/util/duration.js';
import { forgeRequest, type Harness, harness, rawChannel, rejection, until } from './helpers.js';

const contract = defineContract({ stores: { s: z.number() } });
type C = typeof contract;

let h: Harness<C> | undefined;
let host: StoreHost | undefined;

afterEach(async () => {
  if (host !== undefined) {
    // Leak check: no lease or waiter left once every test released what it took.
    expect(host.stats()).toMatchObject({ leases: 0, waiters: 0 });
    await host.close();
    host = undefined;
  }
  if (h !== undefined) {
    expect(await h.close()).toBe(0);
    h = undefined;
  }
});

async function start(count = 2) {
  h = await harness(contract, count);
  host = await StoreHost.open(h.primary);
  return { h, host, primary: h.primary, workers: h.workers };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('lock', () => {
  it('excludes mutually across processes, serves waiters FIFO, and grows the fencing token', async () => {
    const { primary, workers } = await start(3);
    const buses = [primary, ...workers];
    let inside = 0;
    let maxInside = 0;
    const order: string[] = [];
    const tokens: number[] = [];
    await Promise.all(
      buses.flatMap((bus, p) =>
        Array.from({ length: 5 }, async (_, i) => {
          const lease = await bus.lock('critical', { waitMs: 10_000 });
          inside++;
          maxInside = Math.max(maxInside, inside);
          tokens.push(lease.token);
          order.push(`${p}:${i}`);
          await sleep(1);
          inside--;
          expect(await lease.release()).toBe(true);
        }),
      ),
    );
    expect(maxInside).toBe(1);
    expect(order).toHaveLength(20);
    expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
    expect(new Set(tokens).size).toBe(20);
    expect(host!.stats()).toMatchObject({ leases: 0, waiters: 0 });
  });

  it('serves waiters in arrival order', async () => {
    const { primary, workers } = await start(2);
    const first = await primary.lock('q');
    const granted: number[] = [];
    const waits: Promise<void>[] = [];
    for (const [i, bus] of [workers[1]!, primary, workers[0]!].entries()) {
      waits.push(
        bus.lock('q').then(async (lease) => {
          granted.push(i);
          await lease.release();
        }),
      );
      await until(() => host!.stats().waiters === i + 1);
    }
    await first.release();
    await Promise.all(waits);
    expect(granted).toEqual([0, 1, 2]);
  });

  it('rejects with LOCK_TIMEOUT after waitMs (waitMs 0: at once), and leaves no waiter behind', async () => {
    const { primary, workers } = await start(1);
    const held = await primary.lock('busy');
    const t0 = performance.now();
    const now = await rejection(workers[0]!.lock('busy', { waitMs: 0 }));
    expect(now.code).toBe('LOCK_TIMEOUT');
    const later = await rejection(workers[0]!.lock('busy', { waitMs: 50 }));
    expect(later.code).toBe('LOCK_TIMEOUT');
    expect(later.message).toContain("lock 'busy'");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
    expect(host!.stats()).toMatchObject({ leases: 1, waiters: 0 });
    await held.release();
  });

  it('an aborted waiter rejects with ABORTED and leaves the queue', async () => {
    const { primary, workers } = await start(1);
    const held = await primary.lock('busy');
    for (const bus of [workers[0]!, primary]) {
      const controller = new AbortController();
      const waiting = bus.lock('busy', { signal: controller.signal });
      await until(() => host!.stats().waiters === 1);
      controller.abort();
      expect((await rejection(waiting)).code).toBe('ABORTED');
      await until(() => host!.stats().waiters === 0);
    }
    await held.release();
    // The lock is free: nothing was left granted to the aborted callers.
    expect(host!.stats()).toMatchObject({ leases: 0, waiters: 0 });
  });

  it('ends a lease after its ttlMs and grants the next waiter; a late release is a no-op', async () => {
    const { primary, workers } = await start(1);
    const first = await workers[0]!.lock('job', { ttlMs: 40 });
    const t0 = performance.now();
    const second = await primary.lock('job', { waitMs: 5_000 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(30);
    expect(second.token).toBeGreaterThan(first.token);
    expect(await first.release()).toBe(false);
    expect(await second.release()).toBe(true);
    expect(await second.release()).toBe(false); // idempotent
  });

  it('frees the lease of a worker whose link is cut, at once, and drops its waiters', async () => {
    const { h, primary, workers } = await start(2);
    const held = await workers[0]!.lock('x', { ttlMs: 60_000 });
    // Worker 1 also waits on another lock held by the primary: dropped with it.
    const other = await primary.lock('y');
    const orphan = workers[0]!.lock('y', { waitMs: 60_000 }).catch((e: BusError) => e.code);
    const waiter = workers[1]!.lock('x', { waitMs: 60_000 });
    await until(() => host!.stats().waiters === 2);
    const t0 = performance.now();
    h.kill(0);
    const lease = await waiter;
    expect(performance.now() - t0).toBeLessThan(100);
    expect(lease.token).toBeGreaterThan(held.token);
    expect(await orphan).toBe('CLOSED'); // as the cut-off worker itself sees it
    expect(host!.stats()).toMatchObject({ leases: 2, waiters: 0 });
    await lease.release();
    await other.release();
  });

  it('frees the lease of a worker whose bus closes', async () => {
    const { primary, workers } = await start(1);
    await workers[0]!.lock('x');
    const waiting = primary.lock('x');
    await until(() => host!.stats().waiters === 1);
    await workers[0]!.close();
    const lease = await waiting;
    await lease.release();
  });

  it('rejects waiters with CLOSED when the host closes, and supports await using', async () => {
    const { primary, workers } = await start(1);
    {
      await using lease = await primary.lock('scoped');
      expect(host!.stats().leases).toBe(1);
      expect(lease.name).toBe('scoped');
    }
    expect(host!.stats().leases).toBe(0);
    const held: Lease = await primary.lock('z');
    const waiting = workers[0]!.lock('z');
    await until(() => host!.stats().waiters === 1);
    await host!.close();
    expect((await rejection(waiting)).code).toBe('CLOSED');
    expect(held.token).toBeGreaterThan(0);
  });

  it('rejects bad names and options with INVALID_ARGUMENT', async () => {
    const { primary } = await start(1);
    for (const call of [
      () => primary.lock(''),
      () => primary.lock('x', { ttlMs: 0 }),
      () => primary.lock('x', { waitMs: -1 }),
      () => primary.lock('x', { signal: 'no' as unknown as AbortSignal }),
    ]) {
      expect((await rejection(call())).code).toBe('INVALID_ARGUMENT');
    }
  });
});

describe('lock durations (regressions: a lock must never have two holders)', () => {
  it("refuses ttlMs: 3e9 (past Node's 2^31-1 ms timer limit) with INVALID_ARGUMENT: no lease that ends after 1 ms", async () => {
    const { primary, workers } = await start(1);
    for (const bus of [workers[0]!, primary]) {
      const error = await rejection(bus.lock('x', { ttlMs: 3e9 }));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain('2147483647');
    }
    expect(host!.stats()).toMatchObject({ leases: 0, waiters: 0 });
    // The limit itself is a lease that holds: a second process does not get the lock.
    const held = await workers[0]!.lock('x', { ttlMs: MAX_TIMER_MS });
    await sleep(30);
    expect((await rejection(primary.lock('x', { waitMs: 0 }))).code).toBe('LOCK_TIMEOUT');
    expect(await held.release()).toBe(true);
  });

  it('refuses every bad duration of lock and extend with INVALID_ARGUMENT: 0, negative, NaN, Infinity, a string, past the limit', async () => {
    const { workers } = await start(1);
    const bus = workers[0]!;
    const bad = [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 3e9, '5'] as unknown as number[];
    const lease = await bus.lock('held');
    for (const ms of bad) {
      expect((await rejection(bus.lock('x', { ttlMs: ms }))).code).toBe('INVALID_ARGUMENT');
      expect((await rejection(lease.extend(ms))).code).toBe('INVALID_ARGUMENT');
      if (ms !== 0) {
        expect((await rejection(bus.lock('x', { waitMs: ms }))).code).toBe('INVALID_ARGUMENT');
      }
      expect((await rejection(bus.store('s').get('k', { timeoutMs: ms }))).code).toBe(
        'INVALID_ARGUMENT',
      );
    }
    expect((await rejection(lease.extend(undefined as unknown as number))).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(await lease.release()).toBe(true);
  });

  it('the host refuses a forged acquire with a ttl or wait past the limit (a hostile worker skips the client)', async () => {
    const { h } = await start(1);
    const raw = rawChannel(h.pairs[0]!);
    for (const payload of [
      { n: 'x', a: 1, ttl: 3e9, wait: 0 },
      { n: 'x', a: 2, ttl: 1_000, wait: 3e9 },
      { n: 'x', a: 3, ttl: -5, wait: 0 },
      { n: 'x', a: 4, ttl: '1000', wait: 0 },
    ]) {
      const answer = await forgeRequest(raw, '$state.acquire', payload);
      expect(answer.ok ? answer.value : answer.error.code).toBe('INVALID_ARGUMENT');
    }
    expect(host!.stats()).toMatchObject({ leases: 0, waiters: 0 });
  });

  it("a lease timer past Node's limit does not fire early: the lock table re-arms it", async () => {
    const table = new LockTable();
    const signal = () => new AbortController().signal;
    try {
      expect(table.acquire('x', 1, 1, 3e9, 0, signal)).toMatchObject({ t: 1 });
      await sleep(30);
      expect(() => table.acquire('x', 2, 1, 1_000, 0, signal)).toThrow(
        expect.objectContaining({ code: 'LOCK_TIMEOUT' }),
      );
      expect(table.stats()).toEqual({ leases: 1, waiters: 0 });
    } finally {
      table.close();
    }
  });

  it('refuses to extend a lease past its end whose timer has not run yet (a busy event loop), and hands the lock on', async () => {
    let now = 1_000;
    const table = new LockTable(
      0,
      () => {},
      () => now,
    );
    const signal = () => new AbortController().signal;
    try {
      const grant = table.acquire('x', 1, 1, 100, 0, signal) as { t: number; k: string };
      const waiting = table.acquire('x', 2, 1, 5_000, 60_000, signal);
      now += 100; // its end, by the clock; the real timer is ~100 ms away
      const claim = { name: 'x', origin: 1, token: grant.t, proof: grant.k };
      expect(() => table.extend(claim, 60_000)).toThrow(
        expect.objectContaining({ code: 'LEASE_EXPIRED' }),
      );
      expect(table.stats()).toEqual({ leases: 1, waiters: 0 }); // worker 2's now
      await expect(waiting).resolves.toMatchObject({ t: grant.t + 1 });
      expect(table.release(claim)).toBe(false);
    } finally {
      table.close();
    }
  });

  it("deadline() fires once, exactly when due, for a delay past Node's limit (never after 1 ms)", () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      let fired = 0;
      deadline(() => fired++, 3e9);
      vi.advanceTimersByTime(1);
      expect(fired).toBe(0);
      vi.advanceTimersByTime(MAX_TIMER_MS);
      expect(fired).toBe(0);
      vi.advanceTimersByTime(3e9 - MAX_TIMER_MS - 2);
      expect(fired).toBe(0);
      vi.advanceTimersByTime(2);
      expect(fired).toBe(1);
      const cleared = deadline(() => fired++, 3e9);
      cleared.clear();
      vi.advanceTimersByTime(4e9);
      expect(fired).toBe(1);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("keeps a store entry whose ttlMs is past Node's limit (its expiry timer is re-armed, never fires early)", async () => {
    const { primary, workers } = await start(1);
    const t0 = Date.now();
    await workers[0]!.store('s').set('long', 1, { ttlMs: 3e9 });
    await sleep(30);
    const entry = await primary.store('s').entry('long');
    expect(entry?.value).toBe(1);
    expect(entry!.expiresAt!).toBeGreaterThanOrEqual(t0 + 3e9);
  });
});

describe('lease owners (regressions: only the holder releases or extends)', () => {
  /** Worker 1 holds 'x' (not the first token ever: the tokens before it were others'). */
  async function held() {
    const started = await start(2);
    await (await started.primary.lock('warm-up')).release();
    await (await started.workers[1]!.lock('warm-up')).release();
    const lease = await started.workers[0]!.lock('x', { ttlMs: 60_000 });
    const errors: BusError[] = [];
    started.primary.on('error', (e) => errors.push(e));
    return { ...started, lease, errors };
  }

  it('refuses a forged $state.release with FORBIDDEN (another process, a guessed or a wrong token), reports each on the primary, and keeps the lease', async () => {
    const { h, primary, workers, lease, errors } = await held();
    const waiter = workers[1]!.lock('x', { waitMs: 60_000 });
    await until(() => host!.stats().waiters === 1);
    const t = lease.token;
    const other = rawChannel(h.pairs[1]!);
    const holder = rawChannel(h.pairs[0]!);
    const forged = [
      [other, { n: 'x', t }],
      [other, { n: 'x', t, k: 'guessed-proof' }],
      [other, { n: 'x', t: t - 1 }],
      [other, { n: 'x', t: t + 1 }],
      [other, { n: 'x', t: 999_999 }],
      [holder, { n: 'x', t: t - 1 }], // a token that was another process's lease
      [holder, { n: 'x', t: t + 1 }], // one never granted
    ] as const;
    for (const [channel, payload] of forged) {
      const answer = await forgeRequest(channel, '$state.release', payload);
      expect(answer.ok ? answer.value : answer.error.code, JSON.stringify(payload)).toBe(
        'FORBIDDEN',
      );
    }
    // The primary's own code cannot release a worker's lease either.
    const own = await rejection(primary.systemCall('$state.release', 'primary', { n: 'x', t }));
    expect(own.code).toBe('FORBIDDEN');
    expect(errors.map((e) => e.code)).toEqual(Array(forged.length + 1).fill('FORBIDDEN'));
    expect(errors[0]!.data).toEqual({ lock: 'x', token: t, origin: 2 });
    expect(errors[0]!.message).toContain('worker 2 may not release');
    // Nothing changed: worker 1 still holds it, worker 2 still waits.
    expect(host!.stats()).toMatchObject({ leases: 1, waiters: 1 });
    expect(await lease.release()).toBe(true);
    const next = await waiter;
    expect(next.token).toBeGreaterThan(t);
    await next.release();
  });

  it('refuses a forged $state.extend with FORBIDDEN and reports it; the expiry does not move', async () => {
    const { h, workers, lease, errors } = await held();
    const short = await workers[0]!.lock('y', { ttlMs: 150 });
    const other = rawChannel(h.pairs[1]!);
    for (const payload of [
      { n: 'y', t: short.token, ttl: 1_000_000 },
      { n: 'y', t: short.token + 1, ttl: 1_000_000 },
      { n: 'x', t: lease.token, ttl: 1_000_000 },
    ]) {
      const answer = await forgeRequest(other, '$state.extend', payload);
      expect(answer.ok ? answer.value : answer.error.code).toBe('FORBIDDEN');
    }
    expect(errors.map((e) => e.code)).toEqual(['FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN']);
    expect(errors[0]!.message).toContain('worker 2 may not extend');
    // 'y' still ends at its own ttlMs: the forged extends moved nothing.
    await until(() => host!.stats().leases === 1, 5_000);
    expect(await short.release()).toBe(false);
    expect(await lease.release()).toBe(true);
  });

  it('an honest late release stays a no-op (false) and a late extend LEASE_EXPIRED, never FORBIDDEN; the holder with its token may release', async () => {
    const { h, primary, workers } = await start(2);
    const errors: BusError[] = [];
    primary.on('error', (e) => errors.push(e));
    const first = await workers[0]!.lock('job', { ttlMs: 30 });
    const second = await workers[1]!.lock('job', { waitMs: 5_000 });
    expect((await rejection(first.extend(1_000))).code).toBe('LEASE_EXPIRED');
    expect(await first.release()).toBe(false);
    expect(errors).toEqual([]);
    // The process that holds the lease, with its token, may release it even from a raw frame.
    const answer = await forgeRequest(rawChannel(h.pairs[1]!), '$state.release', {
      n: 'job',
      t: second.token,
    });
    expect(answer).toEqual({ ok: true, value: true });
    expect(await second.release()).toBe(false);
  });
});

describe('lease.extend', () => {
  it('moves the expiry to now + ttlMs and keeps the token: the lease outlives its first ttlMs', async () => {
    const { primary, workers } = await start(1);
    for (const [bus, other] of [
      [workers[0]!, primary],
      [primary, workers[0]!],
    ] as const) {
      const lease = await bus.lock('job', { ttlMs: 100 });
      const token = lease.token;
      const before = Date.now();
      const x = await lease.extend(5_000);
      expect(x).toBeGreaterThanOrEqual(before + 5_000);
      expect(x).toBeLessThanOrEqual(Date.now() + 5_000);
      expect(lease.expiresAt).toBe(x);
      expect(lease.token).toBe(token);
      await sleep(250); // well past the first ttlMs
      expect((await rejection(other.lock('job', { waitMs: 0 }))).code).toBe('LOCK_TIMEOUT');
      expect(await lease.release()).toBe(true);
    }
  });

  it('rejects with LEASE_EXPIRED after expiry, after release, and once the holder lost its link', async () => {
    const { h, workers } = await start(2);
    const expired = await workers[0]!.lock('a', { ttlMs: 30 });
    await until(() => host!.stats().leases === 0);
    const e1 = await rejection(expired.extend(1_000));
    expect(e1.code).toBe('LEASE_EXPIRED');
    expect(e1.data).toEqual({ lock: 'a', token: expired.token });

    const released = await workers[0]!.lock('b');
    expect(await released.release()).toBe(true);
    expect((await rejection(released.extend(1_000))).code).toBe('LEASE_EXPIRED');

    const lost = await workers[1]!.lock('c', { ttlMs: 60_000 });
    h.kill(1);
    await until(() => host!.stats().leases === 0);
    expect((await rejection(lost.extend(1_000))).code).toBe('LEASE_EXPIRED');
    expect(await lost.release()).toBe(false);
  });

  it('rejects a bad ttlMs with INVALID_ARGUMENT and leaves the expiry where it was', async () => {
    const { workers } = await start(1);
    const lease = await workers[0]!.lock('job');
    const before = lease.expiresAt;
    for (const ms of [0, -1, Number.NaN, 3e9, 'soon'] as unknown as number[]) {
      const error = await rejection(lease.extend(ms));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error).toBeInstanceOf(BusError);
    }
    expect(lease.expiresAt).toBe(before);
    expect(await lease.release()).toBe(true);
  });
});
