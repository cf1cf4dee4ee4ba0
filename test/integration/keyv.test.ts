/**
 * `clusterbus/keyv` with keyv's own API across real workers: a value set through Keyv in one
 * worker is read in another, TTLs expire for everyone, namespaces are isolated, and `clear()`
 * clears only its namespace.
 */
import cluster from 'node:cluster';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterApp, startCluster } from '../../src/index.js';
import { contract } from './fixtures/adapters-contract.js';
import { forkedPids, isAlive } from './fixtures/common.js';

const WORKER = fileURLToPath(new URL('./fixtures/adapters-worker.ts', import.meta.url));

let app: ClusterApp<typeof contract> | undefined;
let a = 0;
let b = 0;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  app = await startCluster({
    contract,
    workers: 2,
    exec: WORKER,
    execArgv: ['--import', 'tsx'],
    env: { ADAPTERS_PORT: String(await freePort()) },
  });
  [a, b] = app
    .workers()
    .map((w) => w.id)
    .sort((x, y) => x - y) as [number, number];
});

afterAll(async () => {
  const x = app;
  app = undefined;
  if (x === undefined) return;
  await x.close();
  expect(x.bus.pendingCount).toBe(0);
  expect(forkedPids().filter(isAlive)).toEqual([]);
  expect(Object.keys(cluster.workers ?? {})).toEqual([]);
});

describe('ClusterKeyv (keyv 6) across real workers', () => {
  it('a value set with keyv in one worker is read, found and deleted in another', async () => {
    const bus = app!.bus;
    const value = { user: 'ada', roles: ['admin'], n: 1 };
    expect(await bus.call(a, 'kvSet', { namespace: 'users', key: 'u1', value })).toBe(true);
    expect(await bus.call(b, 'kvGet', { namespace: 'users', key: 'u1' })).toEqual(value);
    expect(await bus.call(b, 'kvHas', { namespace: 'users', key: 'u1' })).toBe(true);
    expect(await bus.call(b, 'kvGetMany', { namespace: 'users', keys: ['u1', 'none'] })).toEqual([
      value,
      undefined,
    ]);
    // One copy, in the primary's store, under the namespaced key.
    expect(await bus.store('cache').keys({ prefix: 'users::' })).toEqual(['users::u1']);
    expect(await bus.call(b, 'kvDelete', { namespace: 'users', key: 'u1' })).toBe(true);
    expect(await bus.call(a, 'kvGet', { namespace: 'users', key: 'u1' })).toBeUndefined();
    expect(await bus.call(a, 'kvHas', { namespace: 'users', key: 'u1' })).toBe(false);
  });

  it("a TTL set through keyv expires for every worker, and the primary's store drops the entry", async () => {
    const bus = app!.bus;
    expect(await bus.call(a, 'kvSet', { namespace: 'ttl', key: 'k', value: 'v', ttl: 400 })).toBe(
      true,
    );
    expect(await bus.call(b, 'kvGet', { namespace: 'ttl', key: 'k' })).toBe('v');
    const entry = await bus.store('cache').entry('ttl::k');
    expect(entry?.expiresAt).toBeGreaterThan(Date.now());
    expect(entry!.expiresAt! - Date.now()).toBeLessThanOrEqual(400);
    await new Promise((r) => setTimeout(r, 600));
    expect(await bus.call(b, 'kvGet', { namespace: 'ttl', key: 'k' })).toBeUndefined();
    expect(await bus.call(a, 'kvHas', { namespace: 'ttl', key: 'k' })).toBe(false);
    expect(await bus.store('cache').keys({ prefix: 'ttl::' })).toEqual([]);
  });

  it('namespaces are isolated, and clear() clears only its own namespace', async () => {
    const bus = app!.bus;
    await bus.call(a, 'kvSet', { namespace: 'red', key: 'same', value: 'r' });
    await bus.call(a, 'kvSet', { namespace: 'red', key: 'other', value: 'r2' });
    await bus.call(b, 'kvSet', { namespace: 'blue', key: 'same', value: 'b' });
    expect(await bus.call(b, 'kvGet', { namespace: 'red', key: 'same' })).toBe('r');
    expect(await bus.call(a, 'kvGet', { namespace: 'blue', key: 'same' })).toBe('b');
    expect(await bus.call(a, 'kvGet', { namespace: 'green', key: 'same' })).toBeUndefined();
    await bus.call(b, 'kvClear', { namespace: 'red' });
    expect(await bus.call(a, 'kvGet', { namespace: 'red', key: 'same' })).toBeUndefined();
    expect(await bus.call(a, 'kvGet', { namespace: 'red', key: 'other' })).toBeUndefined();
    expect(await bus.call(a, 'kvGet', { namespace: 'blue', key: 'same' })).toBe('b');
    expect(await bus.store('cache').keys({ prefix: 'blue::' })).toEqual(['blue::same']);
  });

  it("a store error reaches keyv's error event as the BusError: a key too long for the store", async () => {
    const bus = app!.bus;
    const key = 'x'.repeat(2_000);
    expect(await bus.call(a, 'kvSet', { namespace: 'big', key, value: 1 })).toBe(false);
    expect(await bus.call(a, 'kvGet', { namespace: 'big', key })).toBeUndefined();
    expect(await bus.call(a, 'kvErrors')).toEqual(['INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
  });
});
