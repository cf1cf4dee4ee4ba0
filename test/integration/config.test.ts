/**
 * Config on real workers: the initial config before connect() resolves, updates acknowledged by
 * every worker, refusals, invalid configs, replacements and late workers, the config file.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterApp } from '../../src/index.js';
import { contract } from './fixtures/config-contract.js';
import {
  fixture,
  forkedPids,
  once,
  record,
  rejection,
  start,
  stop,
} from './fixtures/supervisor-helpers.js';

type App = ClusterApp<typeof contract>;
const WORKER = fixture('config-worker.ts');
const SINCE = new Date('2024-01-02T03:04:05.678Z');
const INITIAL = { greeting: 'hello', limit: 10, since: SINCE };

let app: App | undefined;
let dir: string | undefined;
afterEach(async () => {
  await stop(app);
  app = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Every worker's view, by slot. */
async function views(running: App) {
  const all = await running.bus.callAll('config');
  return all
    .map((r) => {
      if (r.status !== 'fulfilled') throw r.error;
      return r.value;
    })
    .sort((a, b) => a.slot - b.slot);
}

describe('initial config', () => {
  it('is in every worker before its connect() resolves, typed and parsed', async () => {
    app = await start(contract, WORKER, { config: INITIAL, health: false });
    expect(app.config.version).toBe(1);
    expect(app.config.current).toEqual(INITIAL);
    for (const v of await views(app)) {
      expect(v.atConnect).toEqual({ version: 1, current: INITIAL });
      // A Date survives the trip (superjson), and the schema's default applies in the worker.
      expect(v.atConnect.current.since).toBeInstanceOf(Date);
    }
    app.config.current.since satisfies Date;
  });

  it('applies the schema’s defaults in every process', async () => {
    app = await start(contract, WORKER, {
      workers: 1,
      config: { greeting: 'hi', limit: 1 },
      health: false,
    });
    expect(app.config.current.since).toEqual(new Date(0));
    const [v] = await views(app);
    expect(v!.atConnect.current).toEqual({ greeting: 'hi', limit: 1, since: new Date(0) });
  });

  it('is validated by startCluster: VALIDATION, and no worker is forked', async () => {
    const before = forkedPids().length;
    const error = await rejection(
      start(contract, WORKER, { config: { greeting: '', limit: -1 } as never, health: false }),
    );
    expect(error.code).toBe('VALIDATION');
    expect(error.issues?.map((i) => i.path)).toEqual([['greeting'], ['limit']]);
    expect(forkedPids().length).toBe(before);
  });
});

describe('app.config.update()', () => {
  it('reaches every worker and resolves with each acknowledgement', async () => {
    app = await start(contract, WORKER, { config: INITIAL, health: false });
    const events = record(app, 'config:update');
    const next = { greeting: 'bonjour', limit: 20, since: new Date('2025-05-05T00:00:00Z') };
    const result = await app.config.update(next);
    expect(result).toEqual({
      version: 2,
      accepted: true,
      workers: [
        { workerId: expect.any(Number), slot: 0, status: 'accepted' },
        { workerId: expect.any(Number), slot: 1, status: 'accepted' },
      ],
    });
    expect(events.map((e) => e.version)).toEqual([2]);
    expect(app.config).toMatchObject({ version: 2, current: next });
    for (const v of await views(app)) {
      expect(v.now).toEqual({ version: 2, current: next });
      expect(v.applied).toEqual([2]);
    }
  });

  it('reports a refusing worker, which keeps its previous config', async () => {
    app = await start(contract, WORKER, { config: INITIAL, health: false });
    const result = await app.config.update({ greeting: 'hello', limit: 500 });
    expect(result.version).toBe(2);
    expect(result.accepted).toBe(false);
    const [slot0, slot1] = result.workers;
    expect(slot0).toMatchObject({ slot: 0, status: 'accepted' });
    expect(slot1).toMatchObject({ slot: 1, status: 'refused' });
    expect(slot1!.error?.code).toBe('REMOTE');
    expect(slot1!.error?.message).toContain('slot 1 cannot take limit 500 (max 100)');
    const [v0, v1] = await views(app);
    expect(v0!.now).toMatchObject({ version: 2, current: { limit: 500 } });
    expect(v1!.now).toEqual({ version: 1, current: INITIAL });
    expect(v1!.applied).toEqual([]);
  });

  it('rejects an invalid config with VALIDATION and changes nothing anywhere', async () => {
    app = await start(contract, WORKER, { config: INITIAL, health: false });
    const events = record(app, 'config:update');
    const error = await rejection(app.config.update({ greeting: 'x', limit: 1.5 }));
    expect(error.code).toBe('VALIDATION');
    expect(error.issues).toEqual([expect.objectContaining({ path: ['limit'] })]);
    expect(app.config).toMatchObject({ version: 1, current: INITIAL });
    expect(events).toEqual([]);
    for (const v of await views(app)) {
      expect(v.now).toEqual({ version: 1, current: INITIAL });
      expect(v.applied).toEqual([]);
    }
  });

  it('applies concurrent updates in version order everywhere', async () => {
    app = await start(contract, WORKER, { config: INITIAL, health: false });
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map((limit) => app!.config.update({ greeting: 'g', limit })),
    );
    expect(results.map((r) => [r.version, r.accepted])).toEqual([
      [2, true],
      [3, true],
      [4, true],
      [5, true],
      [6, true],
    ]);
    for (const v of await views(app)) {
      expect(v.applied).toEqual([2, 3, 4, 5, 6]);
      expect(v.now.current.limit).toBe(5);
    }
  });

  it('starts a replacement worker with the latest config', async () => {
    app = await start(contract, WORKER, { config: INITIAL, health: false });
    const latest = { greeting: 'latest', limit: 7, since: SINCE };
    await app.config.update({ greeting: 'first', limit: 1 });
    await app.config.update(latest);
    const [victim] = app.workers();
    const exit = once(app, 'worker:exit', (e) => e.workerId === victim!.id);
    process.kill(victim!.pid!, 'SIGKILL');
    const replacement = (await exit).replacedBy!;
    await once(app, 'worker:ready', (e) => e.workerId === replacement);
    const v = await app.bus.call({ slot: victim!.slot }, 'config');
    expect(v).toMatchObject({ workerId: replacement, slot: victim!.slot });
    // Welcomed with version 3: no update was sent to it, it started with it.
    expect(v.atConnect).toEqual({ version: 3, current: latest });
    expect(v.applied).toEqual([]);
  });

  it('brings a worker that was starting during an update to the latest version', async () => {
    app = await start(contract, WORKER, { config: INITIAL, health: false });
    const forked = once(app, 'worker:fork');
    const scaling = app.scale(3);
    await forked;
    // The new worker is forked but not ready: the update does not wait for it...
    const result = await app.config.update({ greeting: 'during', limit: 3 });
    expect(result.workers.map((w) => w.slot)).toEqual([0, 1]);
    await scaling;
    // ...and it still ends up on the latest version (from its welcome, or pushed when ready).
    const v = await app.bus.call({ slot: 2 }, 'config');
    expect(v.now).toMatchObject({ version: 2, current: { greeting: 'during', limit: 3 } });
  });
});

describe('configFile', () => {
  it('is read at start, and reload() validates and applies it again', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'clusterbus-config-'));
    const file = path.join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ greeting: 'from file', limit: 4 }));
    app = await start(contract, WORKER, { configFile: file, health: false });
    expect(app.config).toMatchObject({ version: 1, current: { greeting: 'from file', limit: 4 } });

    await writeFile(file, JSON.stringify({ greeting: 'reloaded', limit: 5 }));
    const result = await app.config.reload();
    expect(result).toMatchObject({ version: 2, accepted: true });
    for (const v of await views(app)) expect(v.now.current.greeting).toBe('reloaded');

    await writeFile(file, '{ "greeting": ');
    expect((await rejection(app.config.reload())).code).toBe('VALIDATION');
    await writeFile(file, JSON.stringify({ greeting: 'bad', limit: 0 }));
    expect((await rejection(app.config.reload())).code).toBe('VALIDATION');
    await rm(file);
    expect((await rejection(app.config.reload())).code).toBe('INVALID_ARGUMENT');
    expect(app.config.version).toBe(2);
  });
});
