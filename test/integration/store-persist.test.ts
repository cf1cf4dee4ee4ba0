/**
 * Persistence across a full restart of the cluster: a snapshot written on `app.close()` is loaded
 * by the next `startCluster`; a truncated snapshot is reported clearly, before any fork.
 */
import cluster from 'node:cluster';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { BusError } from '../../src/index.js';
import { forkedPids, type StoreApp, startStores, stopStores } from './fixtures/store-helpers.js';

let app: StoreApp | undefined;
let dir: string;
let file: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterbus-persist-'));
  file = join(dir, 'stores.snapshot');
});

afterEach(async () => {
  await stopStores(app);
  app = undefined;
  await rm(dir, { recursive: true, force: true });
});

it('reloads a persisted snapshot after app.close() and a new startCluster', async () => {
  const first = await startStores({ workers: 2, persist: { file, intervalMs: 50 } });
  app = first;
  const [w1] = first.workers().map((w) => w.id) as [number];
  await first.bus.callAll('bump', { key: 'GET /', n: 500 });
  const at = new Date('2024-03-04T05:06:07Z');
  await first.bus.store('sessions').set('s1', { user: 'ann', at });
  await first.bus.store('hits').set('ttl', 7, { ttlMs: 60_000 });
  const lease = await first.bus.lock('nightly');
  await lease.release();
  const before = await first.bus.store('hits').entry('GET /');
  expect(before).toEqual({ value: 1_000, revision: 1_000 });
  expect(await first.bus.call(w1, 'session', 's1')).toEqual({ user: 'ann', at: at.getTime() });
  await stopStores(first);
  app = undefined;

  const second = await startStores({ workers: 2, persist: { file, intervalMs: 50 } });
  app = second;
  const [v1] = second.workers().map((w) => w.id) as [number];
  expect(await second.bus.store('hits').entry('GET /')).toEqual(before);
  expect((await second.bus.store('hits').entry('ttl'))?.value).toBe(7);
  // A worker of the new cluster reads the Date back as a Date.
  expect(await second.bus.call(v1, 'session', 's1')).toEqual({ user: 'ann', at: at.getTime() });
  // Revisions go on from the last one (1,001 was the 'ttl' set); tokens keep growing.
  await second.bus.callAll('bump', { key: 'GET /', n: 1 });
  expect(await second.bus.store('hits').entry('GET /')).toEqual({ value: 1_002, revision: 1_003 });
  expect((await second.bus.lock('nightly')).token).toBeGreaterThan(lease.token);
});

it('reports a truncated snapshot file clearly, before forking any worker', async () => {
  const first = await startStores({ workers: 1, persist: { file } });
  app = first;
  await first.bus.store('hits').set('k', 1);
  await stopStores(first);
  app = undefined;
  const text = await readFile(file, 'utf8');
  await writeFile(file, text.slice(0, text.length - 10));
  const pidsBefore = forkedPids().length;

  let error: unknown;
  try {
    app = await startStores({ workers: 2, persist: { file } });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(BusError);
  expect((error as BusError).code).toBe('PERSIST_FAILED');
  expect((error as BusError).message).toContain(file);
  expect((error as BusError).message).toMatch(/corrupt.*truncated/);
  expect(forkedPids().length).toBe(pidsBefore); // no crash loop: nothing was forked
  expect(Object.keys(cluster.workers ?? {})).toEqual([]);
});
