/**
 * Cluster-wide locks over in-memory links: mutual exclusion, FIFO, fencing tokens, waitMs,
 * abort, TTL, and a holder that goes away.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type BusError, defineContract, type Lease } from '../../src/index.js';
import { StoreHost } from '../../src/state/host.js';
import { type Harness, harness, rejection, until } from './helpers.js';

const contract = defineContract({});
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
