/**
 * The state extension on memory buses: installed by hand on a hub and a worker, its system names
 * (`$state.<verb>`), who may send what, the hub's own calls through its local loop (ordered like
 * a link), its lifecycle, and that src/state/ knows nothing of src/bus/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { workerBus } from '../../src/connect.js';
import type { ExtensionContext } from '../../src/core/extension.js';
import { type BusError, defineContract } from '../../src/index.js';
import { primaryBus } from '../../src/primary-bus.js';
import { Kind, MARKER } from '../../src/protocol/envelope.js';
import { stateExtension } from '../../src/state/extension.js';
import { StoreHost } from '../../src/state/host.js';
import { Op, Verb } from '../../src/state/protocol.js';
import { memoryPair } from '../../src/transport/memory.js';
import { forgeRequest, rawChannel, rejection, storesPerTest, until } from './helpers.js';

const contract = defineContract({ stores: { hits: z.number() } });
const start = storesPerTest(contract);

describe('the state extension', () => {
  it('installs on a memory hub and worker: bus.store and bus.lock are its API, on both sides', async () => {
    let connected!: () => void;
    const ready = new Promise<void>((r) => (connected = r));
    const primary = primaryBus(contract, {}, { connected: () => connected() });
    const loaded = await StoreHost.load(contract);
    const api = primary.install(stateExtension(contract, { host: loaded }));
    const pair = memoryPair();
    primary.attachLink(1, pair.a);
    // The worker's bus installs its own (client only) in its constructor.
    const worker = workerBus(contract, pair.b, 1, {}, () => {});
    await ready;
    try {
      expect(primary.store('hits')).toBe(api.store('hits'));
      expect(await worker.store('hits').set('a', 1)).toBe(1);
      expect(await api.store('hits').increment('a')).toBe(2);
      expect(await worker.store('hits').get('a')).toBe(2);
      const lease = await api.lock('job');
      expect(loaded.stats()).toMatchObject({ entries: { hits: 1 }, leases: 1 });
      expect(await lease.release()).toBe(true);
      expect(() => primary.install(stateExtension(contract))).toThrowError(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    } finally {
      await worker.close();
      await primary.close();
    }
    // Closing the bus closed the host it served.
    expect(loaded.isClosed).toBe(true);
  });

  it('names its system methods $state.<verb>, served to workers and to the hub, never routed between workers', async () => {
    expect(Object.values(Op)).toEqual(Object.values(Verb).map((verb) => `$state.${verb}`));
    const h = await start(1);
    const raw = rawChannel(h.pairs[0]!);
    expect(await forgeRequest(raw, Op.set, { s: 'hits', k: 'w', v: 5 })).toEqual({
      ok: true,
      value: { ok: true, r: 1 },
    });
    expect(await h.primary.systemCall(Op.get, 'primary', { s: 'hits', k: 'w' })).toEqual({
      v: 5,
      r: 1,
    });
    // Never routed to another worker: the hub refuses a $state frame addressed past it.
    const routed = await forgeRequest(raw, Op.get, { s: 'hits', k: 'w' }, 5_000, { t: 2 });
    expect(routed.ok ? 'ok' : routed.error.code).toBe('FORBIDDEN');
  });

  it("refuses a worker's forged $state.change on the hub: FORBIDDEN, reported, never seen by the hub's watchers", async () => {
    const h = await start(1);
    const errors: BusError[] = [];
    h.primary.on('error', (e) => errors.push(e));
    const seen: unknown[] = [];
    const off = h.primary.store('hits').watch((c) => seen.push(c));
    expect(await off.ready).toBe(0);
    rawChannel(h.pairs[0]!).send({
      [MARKER]: 1,
      k: Kind.event,
      m: Op.change,
      s: 1,
      p: { w: [1], s: 'hits', k: 'x', o: 'set', v: 666, r: 99 },
    });
    await until(() => errors.length > 0);
    expect(errors.map((e) => e.code)).toEqual(['FORBIDDEN']);
    expect(errors[0]!.message).toContain('worker 1');
    await h.primary.store('hits').set('x', 1);
    await until(() => seen.length === 1);
    expect(seen).toEqual([{ key: 'x', op: 'set', value: 1, revision: 1 }]);
    off();
  });

  it("the hub sees the change of its own write before that write resolves, even when its local loop yields (regression: the hub's answers overtook its own change messages)", async () => {
    const { primary } = await start(1);
    const hits = primary.store('hits');
    const seen: number[] = [];
    const off = hits.watch({ key: 'k' }, (c) => seen.push(c.revision));
    await off.ready;
    // The local loop's clock (src/bus/local-loop.ts reads performance.now) as a busy loop sees
    // it: each reading 0.9 ms after the one before, never a quiet pause, so every few jobs the
    // loop yields to the event loop (a macrotask), wherever that falls. Other readers get the
    // real clock.
    const real = performance.now.bind(performance);
    let clock = real();
    const now = vi.spyOn(performance, 'now').mockImplementation(() => {
      if (!new Error().stack?.includes('local-loop')) return real();
      clock += 0.9;
      return clock;
    });
    const late: number[] = [];
    try {
      for (let i = 0; i < 50; i++) {
        const revision = await hits.increment('k');
        if (seen.at(-1) !== revision) late.push(revision);
      }
    } finally {
      now.mockRestore();
    }
    expect(late).toEqual([]);
    expect(seen).toHaveLength(50);
    off();
  });

  it('runs a store host on the hub only, and a host serves one bus', async () => {
    const loaded = await StoreHost.load(contract);
    const pair = memoryPair();
    const alone = primaryBus(contract, {}, { connected: () => {} });
    alone.attachLink(1, pair.a);
    const worker = workerBus(contract, pair.b, 1, {}, () => {});
    try {
      // A worker's context (its bus has its own state extension already).
      const onWorker = { side: 'worker' } as ExtensionContext;
      expect(() => stateExtension(contract, { host: loaded }).install(onWorker)).toThrowError(
        expect.objectContaining({
          code: 'INVALID_ARGUMENT',
          message: expect.stringContaining('hub only'),
        }),
      );
      alone.install(stateExtension(contract, { host: loaded }));
      const other = primaryBus(contract, {}, { connected: () => {} });
      expect(() => other.install(stateExtension(contract, { host: loaded }))).toThrowError(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
      await other.close();
    } finally {
      await loaded.close();
      await worker.close();
      await alone.close();
    }
  });

  it('a hub bus without it: store() throws NO_HANDLER, lock() rejects with it; a closed bus keeps its API (CLOSED)', async () => {
    const bare = primaryBus(contract, {}, { connected: () => {} });
    expect(() => bare.store('hits')).toThrowError(expect.objectContaining({ code: 'NO_HANDLER' }));
    expect((await rejection(bare.lock('x'))).code).toBe('NO_HANDLER');
    await bare.close();
    const worker = (await start(1)).workers[0]!;
    await worker.close();
    expect((await rejection(worker.store('hits').get('k'))).code).toBe('CLOSED');
    expect((await rejection(worker.lock('x'))).code).toBe('CLOSED');
  });
});

describe('src/state/', () => {
  it('imports only src/core/, protocol/codec, errors, contract and util/ (type-only imports included): nothing of src/bus/', () => {
    const dir = fileURLToPath(new URL('../../src/state/', import.meta.url));
    const allowed =
      /^(\.\/|\.\.\/core\/|\.\.\/util\/|\.\.\/(errors|contract|protocol\/codec)\.js$)/;
    const offenders: string[] = [];
    for (const file of readdirSync(dir)) {
      if (!file.endsWith('.ts')) continue;
      const text = readFileSync(dir + file, 'utf8');
      for (const [, target] of text.matchAll(/(?:from|import\()\s*'([^']+)'/g)) {
        if (target!.startsWith('.') && !allowed.test(target!))
          offenders.push(`${file} -> ${target}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
