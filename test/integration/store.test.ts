/**
 * Shared stores on real workers: the primary (this process) holds the stores, four forked workers
 * hammer them. Atomic increments, lost-update-free update, CAS conflicts, TTL expiry seen by a
 * watcher, STORE_FULL.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type StoreApp, startStores, stopStores, until } from './fixtures/store-helpers.js';

let app: StoreApp;
let ids: number[];

beforeAll(async () => {
  app = await startStores({ workers: 4, store: { limits: { small: { maxEntries: 3 } } } });
  ids = app.workers().map((w) => w.id);
});

afterAll(async () => {
  await stopStores(app);
});

it('ends 4 workers x 5,000 concurrent increments at exactly 20,000, one revision each', async () => {
  const before = await app.bus.store('hits').set('probe', 0); // the store's revision now
  const results = await app.bus.callAll('bump', { key: 'GET /', n: 5_000 });
  expect(results.map((r) => (r.status === 'fulfilled' ? r.value : r.error.message))).toEqual([
    5_000, 5_000, 5_000, 5_000,
  ]);
  const entry = await app.bus.store('hits').entry('GET /');
  expect(entry?.value).toBe(20_000);
  expect(entry?.revision).toBe(before + 20_000);
});

it('loses no update when every worker updates one key concurrently', async () => {
  const results = await app.bus.callAll('append', { key: 'log', n: 25 });
  expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
  const log = (await app.bus.store('lists').get('log')) ?? [];
  expect(log).toHaveLength(100);
  expect(new Set(log).size).toBe(100);
  for (const id of ids) expect(log.filter((x) => x.startsWith(`${id}:`))).toHaveLength(25);
});

it('reports ifRevision conflicts and does not apply them', async () => {
  const hits = app.bus.store('hits');
  const revision = await hits.set('cas', 0);
  const results = await Promise.all(
    ids.map((id, i) => app.bus.call(id, 'cas', { key: 'cas', value: i + 1, ifRevision: revision })),
  );
  const winners = results.filter((r) => r.ok);
  const losers = results.filter((r) => !r.ok);
  expect(winners).toHaveLength(1);
  expect(losers.map((r) => (r.ok ? '' : r.code))).toEqual(['CONFLICT', 'CONFLICT', 'CONFLICT']);
  const winner = results.findIndex((r) => r.ok);
  // The winner's value, at the one revision that followed: the losers changed nothing.
  expect(await hits.entry('cas')).toEqual({ value: winner + 1, revision: revision + 1 });
});

it('fires expire to a watcher in a worker when a TTL passes', async () => {
  const [w1] = ids as [number];
  const start = await app.bus.call(w1, 'watch', { prefix: 'tmp:' });
  const hits = app.bus.store('hits');
  const set = await hits.set('tmp:a', 1, { ttlMs: 100 });
  await hits.set('other', 1, { ttlMs: 100 }); // not watched
  const changes = await until(
    () => app.bus.call(w1, 'changes'),
    (cs) => cs.some((c) => c.op === 'expire'),
    'the watcher sees the expiry',
  );
  expect(set).toBeGreaterThan(start);
  expect(changes).toEqual([
    { key: 'tmp:a', op: 'set', value: 1, revision: set },
    { key: 'tmp:a', op: 'expire', revision: expect.any(Number) },
  ]);
  expect(changes[1]!.revision).toBeGreaterThan(set);
  expect(await hits.get('tmp:a')).toBeUndefined();
  expect(await app.bus.call(w1, 'errors')).toEqual([]);
});

it('rejects a write past maxEntries with STORE_FULL and leaves the store as it was', async () => {
  const [w1, w2] = ids as [number, number];
  expect(await app.bus.call(w1, 'fill', { prefix: 'k', n: 4 })).toEqual([
    expect.any(Number),
    expect.any(Number),
    expect.any(Number),
    'STORE_FULL',
  ]);
  const small = app.bus.store('small');
  const before = await Promise.all(['k0', 'k1', 'k2'].map((k) => small.entry(k)));
  expect(await app.bus.call(w2, 'fill', { prefix: 'x', n: 2 })).toEqual([
    'STORE_FULL',
    'STORE_FULL',
  ]);
  expect(await small.keys()).toEqual(['k0', 'k1', 'k2']);
  expect(await Promise.all(['k0', 'k1', 'k2'].map((k) => small.entry(k)))).toEqual(before);
  // Nothing changed, so no revision was spent: the next write is the 4th.
  expect(await small.set('k0', 'again')).toBe(4);
});
