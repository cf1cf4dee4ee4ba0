/**
 * Persistence across a full restart of the cluster: a snapshot written on `app.close()` is loaded
 * by the next `startCluster`, whatever values the stores accepted; a truncated snapshot, or a
 * directory that cannot be written, is reported clearly before any fork; a last snapshot that
 * cannot be written fails `app.close()`, once everything is stopped.
 */
import cluster from 'node:cluster';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { BusError } from '../../src/index.js';
import { rejection } from './fixtures/common.js';
import {
  forkedPids,
  isAlive,
  type StoreApp,
  startStores,
  stopStores,
} from './fixtures/store-helpers.js';

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

it('keeps every acknowledged write across app.close() and a restart, after a worker stored a request body with an own __proto__ key', async () => {
  const first = await startStores({ workers: 2, persist: { file, intervalMs: 50 } });
  app = first;
  const failures: BusError[] = [];
  first.on('error', (e) => {
    if (e.code === 'PERSIST_FAILED') failures.push(e);
  });
  const [w1, w2] = first.workers().map((w) => w.id) as [number, number];
  await first.bus.call(w1, 'bump', { key: 'before', n: 20 });
  const body = '{"name":"alice","__proto__":{"x":1}}';
  expect(await first.bus.call(w2, 'put', { store: 'users', key: 'alice', json: body })).toEqual({
    ok: true,
    value: 1,
  });
  // A value nested thousands of levels deep, in a z.unknown() store: refused, nothing changes.
  const deep = `${'['.repeat(3_000)}${']'.repeat(3_000)}`;
  expect(await first.bus.call(w1, 'put', { store: 'anything', key: 'deep', json: deep })).toEqual({
    ok: false,
    code: 'PAYLOAD_TOO_DEEP',
  });
  // Writes after them, acknowledged, some past a periodic snapshot (every 50 ms).
  await first.bus.call(w2, 'bump', { key: 'after', n: 20 });
  await new Promise((r) => setTimeout(r, 120));
  const at = new Date('2024-03-04T05:06:07Z');
  await first.bus.store('sessions').set('s1', { user: 'ann', at });
  await first.bus.call(w1, 'bump', { key: 'last', n: 5 });
  await stopStores(first);
  app = undefined;
  expect(failures).toEqual([]);

  const second = await startStores({ workers: 1, persist: { file } });
  app = second;
  const hits = second.bus.store('hits');
  expect([await hits.get('before'), await hits.get('after'), await hits.get('last')]).toEqual([
    20, 20, 5,
  ]);
  expect(await second.bus.store('users').entry('alice')).toEqual({
    value: { name: 'alice' },
    revision: 1,
  });
  expect((await second.bus.store('sessions').get('s1'))?.at).toEqual(at);
  expect(await second.bus.store('anything').keys()).toEqual([]);
});

it('rejects startCluster with PERSIST_FAILED, naming the path, when the snapshot cannot be written there, before forking', async () => {
  await writeFile(join(dir, 'file-not-dir'), 'x');
  const pidsBefore = forkedPids().length;
  // A path through a regular file; a name so long that no temporary file fits next to it.
  for (const path of [join(dir, 'file-not-dir', 'snap.json'), join(dir, 's'.repeat(245))]) {
    const error = await rejection(startStores({ workers: 2, persist: { file: path } }));
    expect(error.code).toBe('PERSIST_FAILED');
    expect(error.message).toContain(path);
  }
  expect(forkedPids().length).toBe(pidsBefore);
  expect(Object.keys(cluster.workers ?? {})).toEqual([]);
});

it('rejects app.close() with PERSIST_FAILED when the last snapshot cannot be written, after stopping every worker', async () => {
  const state = join(dir, 'state');
  const snapshot = join(state, 'stores.snapshot');
  const running = await startStores({
    workers: 2,
    persist: { file: snapshot, intervalMs: 60_000 },
  });
  app = running;
  const [w1] = running.workers().map((w) => w.id) as [number];
  await running.bus.call(w1, 'bump', { key: 'k', n: 5 });
  // The snapshot's directory becomes a file: the last snapshot, on close, cannot be written.
  await rm(state, { recursive: true });
  await writeFile(state, 'not a directory');
  const closed = rejection(running.close());
  app = undefined;
  const error = await closed;
  expect(error.code).toBe('PERSIST_FAILED');
  expect(error.message).toContain(snapshot);
  expect(await rejection(running.close())).toBe(error); // idempotent
  expect(running.bus.isClosed).toBe(true);
  expect(running.bus.pendingCount).toBe(0);
  expect(forkedPids().filter(isAlive)).toEqual([]);
  expect(Object.keys(cluster.workers ?? {})).toEqual([]);
});
