/**
 * Routing by what each worker handles: in ONLY_SOME mode the fixture's even workers do not
 * handle 'onlySome', so 'any' must pick among the odd ones, and callAll reports NO_HANDLER for
 * the even ones.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BusError } from '../../src/index.js';
import { type App, isAlive, pidOf, rejection, start, stop, workerIds } from './helpers.js';

let app: App;
let handling: number[];
let notHandling: number[];

beforeAll(async () => {
  app = await start({ workers: 3, env: { ONLY_SOME: '1' } });
  const ids = workerIds(app);
  handling = ids.filter((id) => id % 2 === 1);
  notHandling = ids.filter((id) => id % 2 === 0);
});

afterEach(async () => {
  expect(app.bus.pendingCount).toBe(0);
  const pending = await app.bus.callAll('pending');
  expect(pending.every((r) => r.status === 'fulfilled' && r.value === 0)).toBe(true);
});

afterAll(() => stop(app));

describe("target 'any' with a method only some workers handle", () => {
  it('has three connected workers, some of each kind', () => {
    expect(app.workers().map((w) => w.connected)).toEqual([true, true, true]);
    expect(handling.length).toBeGreaterThan(0);
    expect(notHandling.length).toBeGreaterThan(0);
  });

  it('picks only workers that handle the method, spreading over them', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) seen.add(await app.bus.call('any', 'onlySome'));
    expect([...seen].sort()).toEqual(handling.map((id) => `worker ${id}`).sort());
  });

  it("picks only handling workers for a worker's 'any' call, even from a worker without it", async () => {
    const caller = notHandling[0]!;
    for (let i = 0; i < 4; i++) {
      const outcome = await app.bus.call(caller, 'relay', { target: 'any', method: 'onlySome' });
      if (!outcome.ok) throw new Error(`relay failed: ${outcome.code} ${outcome.message}`);
      expect(handling.map((id) => `worker ${id}`)).toContain(outcome.value);
    }
  });

  it('gives NO_HANDLER when a named worker does not handle the method', async () => {
    const error = await rejection(app.bus.call(notHandling[0]!, 'onlySome'));
    expect(error.code).toBe('NO_HANDLER');
    expect(error.message).toContain('onlySome');
  });

  it("gives NO_HANDLER for 'any' when no worker handles the method", async () => {
    // 'primaryOnly' has no handler anywhere in this cluster.
    const error = await rejection(app.bus.call('any', 'primaryOnly', { n: 1 }));
    expect(error.code).toBe('NO_HANDLER');
    const outcome = await app.bus.call(handling[0]!, 'relay', {
      target: 'any',
      method: 'primaryOnly',
      input: { n: 1 },
    });
    expect(outcome).toMatchObject({ ok: false, code: 'NO_HANDLER' });
  });
});

describe("target 'any' when no worker handles the method", () => {
  it('gives NO_HANDLER in a cluster whose only worker is one that does not handle it', async () => {
    // Worker ids count up per primary process: this file forked ids 1-3 above, so this lone
    // worker gets an even id and, in ONLY_SOME mode, does not handle 'onlySome'.
    const lone = await start({ workers: 1, env: { ONLY_SOME: '1' } });
    const pid = pidOf(lone, workerIds(lone)[0]!);
    try {
      const [id] = workerIds(lone) as [number];
      expect(id % 2).toBe(0);
      const error = await rejection(lone.bus.call('any', 'onlySome'));
      expect(error.code).toBe('NO_HANDLER');
      expect(error.message).toContain('onlySome');
      expect(await lone.bus.call('any', 'add', { a: 1, b: 2 })).toBe(3);
    } finally {
      await lone.close();
      expect(lone.bus.pendingCount).toBe(0);
      expect(isAlive(pid)).toBe(false);
    }
  });
});

describe('callAll with a method only some workers handle', () => {
  it('fulfils for the handling workers and rejects with NO_HANDLER for the others', async () => {
    const results = await app.bus.callAll('onlySome');
    expect(results.map((r) => r.workerId)).toEqual(workerIds(app));
    for (const r of results) {
      if (handling.includes(r.workerId)) {
        expect(r).toEqual({
          workerId: r.workerId,
          status: 'fulfilled',
          value: `worker ${r.workerId}`,
        });
      } else {
        if (r.status !== 'rejected') throw new Error(`worker ${r.workerId} should have failed`);
        expect(r.error).toBeInstanceOf(BusError);
        expect(r.error.code).toBe('NO_HANDLER');
      }
    }
  });
});
