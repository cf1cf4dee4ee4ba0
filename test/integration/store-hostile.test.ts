/**
 * A lock never has two holders, even with a hostile worker on real processes: a worker that skips
 * its bus and forges `$state.release` / `$state.extend` / `$state.acquire` frames with
 * `process.send` is refused (`FORBIDDEN`, `INVALID_ARGUMENT`), the primary reports it, and the
 * holder keeps its lease; a `ttlMs` past Node's timer limit is refused, never a lease that ends
 * after 1 ms; `lease.extend` renews a lease from a worker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusError } from '../../src/index.js';
import { type StoreApp, startStores, stopStores, until } from './fixtures/store-helpers.js';

let app: StoreApp;
let holder: number;
let hostile: number;
const errors: BusError[] = [];

beforeAll(async () => {
  app = await startStores({ workers: 2, restart: false });
  [holder, hostile] = app.workers().map((w) => w.id) as [number, number];
  app.bus.on('error', (e) => errors.push(e));
});

afterAll(async () => {
  await stopStores(app);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a hostile worker', () => {
  it('cannot release or extend a lease it does not hold: FORBIDDEN, reported on the primary, and the holder keeps the lock', async () => {
    const host = app.storeHost!;
    const held = await app.bus.call(holder, 'tryHold', {
      name: 'nightly',
      ttlMs: 60_000,
      waitMs: 5_000,
    });
    if (!held.ok) throw new Error(`hold failed: ${held.code}`);
    const t = held.value as number;
    const before = errors.length;
    const forged = [
      { m: '$state.release', p: { n: 'nightly', t } },
      { m: '$state.release', p: { n: 'nightly', t: t + 1 } },
      { m: '$state.release', p: { n: 'nightly', t, k: 'x'.repeat(43) } },
      { m: '$state.extend', p: { n: 'nightly', t, ttl: 1 } },
    ];
    for (const frame of forged) {
      expect(await app.bus.call(hostile, 'forge', frame)).toEqual({ ok: false, code: 'FORBIDDEN' });
    }
    await until(
      () => errors.length - before,
      (n) => n >= forged.length,
      'the primary reports each forged frame',
    );
    expect(errors.slice(before).map((e) => [e.code, e.data?.origin])).toEqual(
      Array(forged.length).fill(['FORBIDDEN', hostile]),
    );
    // Nothing changed: the lease is held, by the holder, who can still extend it.
    await sleep(50); // past the forged extend's 1 ms, had it been applied
    expect(host.stats().leases).toBe(1);
    const taken = await app.bus.call(hostile, 'tryHold', {
      name: 'nightly',
      ttlMs: 1_000,
      waitMs: 0,
    });
    expect(taken).toEqual({ ok: false, code: 'LOCK_TIMEOUT' });
    const extended = await app.bus.call(holder, 'extendHeld', { name: 'nightly', ttlMs: 30_000 });
    expect(extended.ok).toBe(true);
    expect(extended.ok && (extended.value as number)).toBeGreaterThan(Date.now() + 20_000);
  });

  it('cannot acquire a lease past the timer limit: ttlMs 3e9 is refused (regression: it ended after 1 ms and a second process got the lock)', async () => {
    // From the client API, and from a forged frame that skips it.
    expect(await app.bus.call(holder, 'tryHold', { name: 'long', ttlMs: 3e9, waitMs: 0 })).toEqual({
      ok: false,
      code: 'INVALID_ARGUMENT',
    });
    expect(
      await app.bus.call(hostile, 'forge', {
        m: '$state.acquire',
        p: { n: 'long', a: 1, ttl: 3e9, wait: 0 },
      }),
    ).toEqual({ ok: false, code: 'INVALID_ARGUMENT' });
    // The longest lease allowed holds: a second process does not get the lock.
    const held = await app.bus.call(holder, 'tryHold', {
      name: 'long',
      ttlMs: 2_147_483_647,
      waitMs: 0,
    });
    expect(held.ok).toBe(true);
    await sleep(50);
    expect(
      await app.bus.call(hostile, 'tryHold', { name: 'long', ttlMs: 1_000, waitMs: 0 }),
    ).toEqual({ ok: false, code: 'LOCK_TIMEOUT' });
  });
});
