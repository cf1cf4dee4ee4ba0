/**
 * RPC over real forked workers and real IPC: primary -> worker, worker -> primary,
 * worker -> worker through the primary, 'any', callAll, and ordering of many calls.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BusError } from '../../src/index.js';
import { type App, pidOf, rejection, start, stop, workerIds } from './helpers.js';

let app: App;
let w1: number;
let w2: number;

beforeAll(async () => {
  app = await start({ workers: 2 });
  [w1, w2] = workerIds(app) as [number, number];
  app.bus.handle('primaryOnly', ({ n }, ctx) => ({ n: n * 2, caller: ctx.caller }));
});

afterEach(async () => {
  // Leak check after every test: nothing pending in the primary or in any worker.
  expect(app.bus.pendingCount).toBe(0);
  const pending = await app.bus.callAll('pending');
  expect(pending.map((r) => (r.status === 'fulfilled' ? r.value : r.error.code))).toEqual([0, 0]);
});

afterAll(() => stop(app));

describe('primary -> worker', () => {
  it('calls a handler in the worker it names and gets its validated result', async () => {
    expect(workerIds(app)).toHaveLength(2);
    expect(await app.bus.call(w1, 'add', { a: 2, b: 3 })).toBe(5);
    const who1 = await app.bus.call(w1, 'whoami');
    const who2 = await app.bus.call(w2, 'whoami');
    expect(who1).toEqual({ workerId: w1, pid: pidOf(app, w1) });
    expect(who2).toEqual({ workerId: w2, pid: pidOf(app, w2) });
    expect(who1.pid).not.toBe(process.pid);
    expect(who1.pid).not.toBe(who2.pid);
  });

  it('runs many concurrent calls, each settling with its own result', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => app.bus.call(i % 2 ? w1 : w2, 'add', { a: i, b: 1 })),
    );
    expect(results).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });
});

describe('worker -> primary', () => {
  it("reaches the primary's handler, which sees the calling worker as ctx.caller", async () => {
    expect(await app.bus.call(w1, 'askPrimary', { n: 21 })).toEqual({ n: 42, caller: w1 });
    expect(await app.bus.call(w2, 'askPrimary', { n: 5 })).toEqual({ n: 10, caller: w2 });
  });

  it("gets NO_HANDLER from the primary for a method the primary doesn't handle", async () => {
    const outcome = await app.bus.call(w1, 'relay', {
      target: 'primary',
      method: 'add',
      input: { a: 1, b: 1 },
    });
    expect(outcome).toMatchObject({ ok: false, code: 'NO_HANDLER' });
  });
});

describe('worker -> worker', () => {
  it('routes callPeer through the primary to the other worker', async () => {
    expect(await app.bus.call(w1, 'callPeer', { target: w2, a: 40, b: 2 })).toBe(42);
    expect(await app.bus.call(w2, 'callPeer', { target: w1, a: -1, b: 1 })).toBe(0);
  });

  it('tells the target which worker called', async () => {
    const outcome = await app.bus.call(w1, 'relay', {
      target: w2,
      method: 'relay',
      input: {
        target: 'primary',
        method: 'primaryOnly',
        input: { n: 1 },
      },
    });
    // w1 -> w2 -> primary: the primary sees w2 as the caller, and the answer travels back twice.
    expect(outcome).toMatchObject({
      ok: true,
      value: { ok: true, value: { n: 2, caller: w2 } },
    });
  });

  it('can call itself through the primary', async () => {
    expect(await app.bus.call(w1, 'callPeer', { target: w1, a: 1, b: 2 })).toBe(3);
  });

  it('gets NO_TARGET for a worker id that does not exist', async () => {
    const outcome = await app.bus.call(w1, 'relay', { target: 9_999, method: 'add', input: {} });
    expect(outcome).toMatchObject({ ok: false, code: 'NO_TARGET' });
  });
});

describe("target 'any'", () => {
  it('spreads calls over the workers, round-robin, from the primary', async () => {
    const seen = new Set<number>();
    for (let i = 0; i < 6; i++) seen.add((await app.bus.call('any', 'whoami')).workerId);
    expect([...seen].sort((a, b) => a - b)).toEqual([w1, w2]);
  });

  it('works from a worker too', async () => {
    expect(await app.bus.call(w2, 'callAny', { a: 20, b: 22 })).toBe(42);
  });

  it('gives NO_HANDLER when no worker handles the method', async () => {
    // Only the primary handles 'primaryOnly'; 'any' never picks the primary.
    const error = await rejection(app.bus.call('any', 'primaryOnly', { n: 1 }));
    expect(error.code).toBe('NO_HANDLER');
  });
});

describe('callAll', () => {
  it('returns one fulfilled result per live worker, in worker id order', async () => {
    const results = await app.bus.callAll('whoami');
    expect(results).toEqual([
      { workerId: w1, status: 'fulfilled', value: { workerId: w1, pid: pidOf(app, w1) } },
      { workerId: w2, status: 'fulfilled', value: { workerId: w2, pid: pidOf(app, w2) } },
    ]);
  });

  it('settles a throwing worker as a rejected entry with a BusError while the others fulfil', async () => {
    const results = await app.bus.callAll('failOn', { workerId: w2 });
    expect(results).toHaveLength(2);
    expect(results[0]).toEqual({ workerId: w1, status: 'fulfilled', value: w1 });
    const failed = results[1]!;
    expect(failed.workerId).toBe(w2);
    if (failed.status !== 'rejected') throw new Error('expected a rejected entry');
    expect(failed.error).toBeInstanceOf(BusError);
    expect(failed.error.code).toBe('REMOTE');
    expect(failed.error.message).toContain(`worker ${w2} refuses`);
    expect((failed.error.cause as Error).name).toBe('RangeError');
  });

  it('settles a per-worker timeout as a rejected TIMEOUT entry', async () => {
    const results = await app.bus.callAll('sleep', { ms: 0 }, { timeoutMs: 5_000 });
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    const hung = await app.bus.callAll('hang', undefined, { timeoutMs: 200 });
    expect(hung.map((r) => [r.workerId, r.status === 'rejected' ? r.error.code : 'ok'])).toEqual([
      [w1, 'TIMEOUT'],
      [w2, 'TIMEOUT'],
    ]);
  });

  it('works from a worker, reaching every worker including the caller', async () => {
    const results = await app.bus.call(w2, 'gatherWhoami');
    expect(results).toEqual([
      { workerId: w1, status: 'fulfilled', pid: pidOf(app, w1) },
      { workerId: w2, status: 'fulfilled', pid: pidOf(app, w2) },
    ]);
  });
});

describe('ordering', () => {
  it('delivers 500 calls from the primary to one worker in the order they were issued', async () => {
    const base = (await app.bus.call(w1, 'recorded')).length;
    const n = 500;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => app.bus.call(w1, 'record', { n: i })),
    );
    expect(results).toEqual(Array.from({ length: n }, (_, i) => i));
    const recorded = (await app.bus.call(w1, 'recorded')).slice(base);
    expect(recorded).toEqual(Array.from({ length: n }, (_, i) => i));
  });
  it('keeps the order when large payloads (sent alone) are interleaved with small ones', async () => {
    const base = (await app.bus.call(w2, 'recorded')).length;
    const n = 300;
    const big = 'x'.repeat(64 * 1024);
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        app.bus.call(w2, 'record', i % 10 === 3 ? { n: i, pad: big } : { n: i }),
      ),
    );
    expect(results).toEqual(Array.from({ length: n }, (_, i) => i));
    const recorded = (await app.bus.call(w2, 'recorded')).slice(base);
    expect(recorded).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it('delivers 500 calls from one worker to another in the order they were issued', async () => {
    const base = (await app.bus.call(w2, 'recorded')).length;
    const n = 500;
    const results = await app.bus.call(w1, 'callMany', { target: w2, count: n });
    expect(results).toEqual(Array.from({ length: n }, (_, i) => i));
    const recorded = (await app.bus.call(w2, 'recorded')).slice(base);
    expect(recorded).toEqual(Array.from({ length: n }, (_, i) => i));
  });
});
