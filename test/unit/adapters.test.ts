/**
 * The drop-in stores over the in-memory harness: express-rate-limit's `ClusterStore` (every
 * method of its Store interface, the reset time, decrement at a window's edge, misuse) and
 * Keyv's `ClusterKeyv` (keyv 6's storage contract, through Keyv itself and directly).
 */
import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ClusterStore } from '../../src/adapters/express-rate-limit.js';
import { ClusterKeyv } from '../../src/adapters/keyv.js';
import { defineContract } from '../../src/contract.js';
import type { CounterStore } from '../../src/state/types.js';
import { storesPerTest } from './helpers.js';

const contract = defineContract({ stores: { rateLimit: z.number(), cache: z.unknown() } });
const stores = storesPerTest(contract);

/** express-rate-limit's init() takes its whole Options; the store reads windowMs only. */
function initialized(store: ClusterStore, windowMs: number): ClusterStore {
  store.init({ windowMs } as Parameters<ClusterStore['init']>[0]);
  return store;
}

describe('ClusterStore (express-rate-limit)', () => {
  it("counts hits across processes; resetTime is the counter's expiry, windowMs after the first hit", async () => {
    const h = await stores(2);
    const [one, two] = h.workers.map((w) =>
      initialized(new ClusterStore(w.store('rateLimit')), 1_000),
    );
    const before = Date.now();
    const a = await one!.increment('ip');
    const b = await two!.increment('ip');
    expect([a.totalHits, b.totalHits]).toEqual([1, 2]);
    expect(a.resetTime!.getTime()).toBe(b.resetTime!.getTime());
    const entry = await h.primary.store('rateLimit').entry('rl:ip');
    expect(entry).toMatchObject({ value: 2, expiresAt: a.resetTime!.getTime() });
    expect(a.resetTime!.getTime() - before).toBeGreaterThan(900);
    expect(a.resetTime!.getTime() - before).toBeLessThanOrEqual(1_000 + (Date.now() - before));
    expect(await one!.get('ip')).toEqual({ totalHits: 2, resetTime: a.resetTime });
    expect(await one!.get('nobody')).toBeUndefined();
  });

  it('a new window starts once the last one expired', async () => {
    const h = await stores(1);
    const s = initialized(new ClusterStore(h.workers[0]!.store('rateLimit')), 150);
    const first = await s.increment('k');
    await s.increment('k');
    await new Promise((r) => setTimeout(r, 250));
    const next = await s.increment('k');
    expect(next.totalHits).toBe(1);
    expect(next.resetTime!.getTime()).toBeGreaterThan(first.resetTime!.getTime());
  });

  it('decrement takes a hit back and keeps the window; at a new window it leaves no counter behind', async () => {
    const h = await stores(1);
    const s = initialized(new ClusterStore(h.workers[0]!.store('rateLimit')), 1_000);
    const first = await s.increment('k');
    await s.increment('k');
    await s.decrement('k');
    expect(await s.get('k')).toEqual({ totalHits: 1, resetTime: first.resetTime });
    // The window ended before the decrement arrived: nothing to take back, nothing left.
    await s.decrement('gone');
    expect(await h.primary.store('rateLimit').keys()).toEqual(['rl:k']);
  });

  it('resetKey ends one window, resetAll every window of its prefix only', async () => {
    const h = await stores(1);
    const rl = h.workers[0]!.store('rateLimit');
    const a = initialized(new ClusterStore(rl, { prefix: 'a:' }), 1_000);
    const b = initialized(new ClusterStore(rl, { prefix: 'b:' }), 1_000);
    await Promise.all([a.increment('x'), a.increment('y'), b.increment('x')]);
    expect(a.prefix).toBe('a:');
    expect(a.localKeys).toBe(false);
    await a.resetKey('x');
    expect((await a.increment('x')).totalHits).toBe(1);
    await a.resetAll();
    expect(await rl.keys()).toEqual(['b:x']);
  });

  it('refuses misuse with INVALID_ARGUMENT: no store of numbers, no init, a bad windowMs', async () => {
    const h = await stores(1);
    expect(() => new ClusterStore({} as CounterStore<number, number>)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    const s = new ClusterStore(h.workers[0]!.store('rateLimit'));
    await expect(s.increment('k')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/not initialized/),
    });
    for (const windowMs of [0, -1, Number.NaN, '1000']) {
      expect(() => initialized(s, windowMs as number)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });
});

describe('ClusterKeyv (keyv 6)', () => {
  it('declares the v6 expires capability, so Keyv uses it directly (no bridge)', async () => {
    const h = await stores(1);
    const adapter = new ClusterKeyv(h.workers[0]!.store('cache'));
    expect(adapter.capabilities.expires).toBe(true);
    const keyv = new Keyv({ store: adapter, namespace: 'ns' });
    expect(keyv.store).toBe(adapter);
    expect(adapter.namespace).toBe('ns');
  });

  it("keyv's API over it: set/get with TTL, getMany, setMany, deleteMany, has, iterator, clear", async () => {
    const h = await stores(1);
    const cache = h.workers[0]!.store('cache');
    const keyv = new Keyv({ store: new ClusterKeyv(cache), namespace: 'app' });
    expect(await keyv.set('a', { n: 1 })).toBe(true);
    expect(await keyv.set('b', 'two', 10_000)).toBe(true);
    expect(await keyv.get('a')).toEqual({ n: 1 });
    expect(await keyv.get(['a', 'b', 'c'])).toEqual([{ n: 1 }, 'two', undefined]);
    expect(await keyv.has('b')).toBe(true);
    expect(await keyv.has(['a', 'none'])).toEqual([true, false]);
    expect(
      await keyv.setMany([
        { key: 'c', value: 3 },
        { key: 'd', value: 4, ttl: 10_000 },
      ]),
    ).toEqual([true, true]);
    expect((await cache.entry('app::d'))?.expiresAt).toBeGreaterThan(Date.now());
    expect((await cache.entry('app::c'))?.expiresAt).toBeUndefined();
    expect(await keyv.deleteMany(['c', 'd', 'none'])).toEqual([true, true, false]);
    const seen: unknown[] = [];
    for await (const [key, value] of keyv.iterator!()) seen.push([key, value]);
    expect(seen).toEqual([
      ['a', { n: 1 }],
      ['b', 'two'],
    ]);
    await cache.set('elsewhere', 'kept');
    await keyv.clear();
    expect(await cache.keys()).toEqual(['elsewhere']);
  });

  it('an expires already past deletes the key; a relative ttl (an older Keyv) is refused; without a namespace, clear() clears the whole store', async () => {
    const h = await stores(1);
    const cache = h.workers[0]!.store('cache');
    const adapter = new ClusterKeyv(cache);
    await adapter.set('k', 'v');
    expect(await adapter.set('k', 'v2', Date.now() - 1)).toBe(true);
    expect(await adapter.get('k')).toBeUndefined();
    await cache.set('ns::x', 1);
    await adapter.set('y', 2);
    await adapter.clear();
    expect(await cache.keys()).toEqual([]);
    await expect(adapter.set('k', 'v', Number.NaN)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    // An older Keyv's relative ttl (60 s) is refused, not read as an epoch long past (a delete).
    await adapter.set('kept', 'v');
    await expect(adapter.set('kept', 'v2', 60_000)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/keyv >= 6\.1/),
    });
    expect(await adapter.get('kept')).toBe('v');
    expect(() => new ClusterKeyv({} as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});
