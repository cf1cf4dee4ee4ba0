/**
 * Streamed responses between real processes: every route, a million items with a slow consumer
 * (flat memory on both sides), cancellation from the primary and from a worker, an error
 * mid-stream, and a producer SIGKILLed mid-stream.
 */
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterApp, startCluster } from '../../src/index.js';
import { contract } from './fixtures/streams-contract.js';
import { serveStreams } from './fixtures/streams-handlers.js';
import { expectNoProcessLeft, rejection, until, workerIds } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const WORKER = fileURLToPath(new URL('./fixtures/streams-worker.ts', import.meta.url));
let app: ClusterApp<typeof contract>;
let w1: number;
let w2: number;

beforeAll(async () => {
  app = await startCluster({
    contract,
    workers: 2,
    exec: WORKER,
    execArgv: ['--import', 'tsx', '--expose-gc'],
  });
  serveStreams(app.bus);
  [w1, w2] = workerIds(app as never) as [number, number];
});

afterEach(async () => {
  await until(
    async () => {
      const pending = await app.bus.callAll('pending');
      return (
        app.bus.pendingCount +
        pending.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value : 99), 0)
      );
    },
    (n) => n === 0,
    'nothing left pending',
  );
  for (const target of ['primary' as const, ...app.bus.connectedWorkers()]) {
    await app.bus.call(target, 'resetProbe', { stallAt: 0 });
  }
});

afterAll(async () => {
  await app.close();
  expect(app.bus.pendingCount).toBe(0);
  expectNoProcessLeft();
});

describe('streams between processes', () => {
  it('primary -> worker, worker -> primary and worker -> worker: every item, in order', async () => {
    const n = 20_000;
    const sum = (n * (n - 1)) / 2;
    let expected = 0;
    for await (const x of app.bus.stream(w1, 'count', { n })) {
      expect(x).toBe(expected++);
    }
    expect(expected).toBe(n);
    expect(await app.bus.call(w1, 'consume', { target: 'primary', n })).toEqual({ count: n, sum });
    expect(await app.bus.call(w1, 'consume', { target: w2, n })).toEqual({ count: n, sum });
    let fromSlot = 0;
    for await (const x of app.bus.stream({ slot: 1 }, 'count', { n: 10 })) fromSlot += x;
    let fromAny = 0;
    for await (const x of app.bus.stream('any', 'count', { n: 10 })) fromAny += x;
    expect([fromSlot, fromAny]).toEqual([45, 45]);
  });

  it('streams 1,000,000 items to a slow consumer with flat memory on both sides', async () => {
    const n = 1_000_000;
    const window = 64;
    const heaps: Array<{ at: number; primary: number; worker: number; ahead: number }> = [];
    let i = 0;
    const started = performance.now();
    for await (const x of app.bus.stream(w1, 'count', { n })) {
      expect(x).toBe(i);
      i++;
      // Slow: the consumer pauses 1 ms every 500 items, far slower than the producer could go.
      if (i % 500 === 0) await new Promise((r) => setTimeout(r, 1));
      if (i % 100_000 === 0) {
        gc();
        const worker = await app.bus.call(w1, 'heap');
        const { produced } = await app.bus.call(w1, 'probe');
        heaps.push({ at: i, primary: process.memoryUsage().heapUsed, worker, ahead: produced - i });
      }
    }
    const seconds = (performance.now() - started) / 1000;
    expect(i).toBe(n);
    // The producer never ran more than the window ahead of what the loop consumed.
    for (const h of heaps) expect(h.ahead).toBeLessThanOrEqual(window);
    // Flat: after the first sample (warm-up), each side's heap stays within 16 MB. Unbounded,
    // a million buffered items would be tens of MB on one side or the other.
    const spread = (side: 'primary' | 'worker') => {
      const values = heaps.slice(1).map((h) => h[side]);
      return Math.max(...values) - Math.min(...values);
    };
    const mb = (b: number) => Math.round(b / 1e5) / 10;
    console.log(
      `1M items, slow consumer: ${Math.round(n / seconds)} items/s; heap spread primary ${mb(spread('primary'))} MB, worker ${mb(spread('worker'))} MB; most ahead ${Math.max(...heaps.map((h) => h.ahead))}`,
    );
    expect(spread('primary')).toBeLessThan(16e6);
    expect(spread('worker')).toBeLessThan(16e6);
  }, 90_000);
});

describe('cancellation', () => {
  it('from the primary: break stops the worker generator (its finally runs, its signal aborts)', async () => {
    let n = 0;
    for await (const tick of app.bus.stream(w1, 'ticks')) {
      expect(tick.i).toBe(n);
      if (++n === 100) break;
    }
    const probe = await until(
      () => app.bus.call(w1, 'probe'),
      (p) => p.finallyRan,
      'finally ran',
    );
    expect(probe.abortCode).toBe('ABORTED');
    expect(probe.produced).toBeLessThanOrEqual(100 + 64);
  });

  it("from a worker: break on the primary's generator, abort and timeout on another worker's", async () => {
    expect(
      await app.bus.call(w1, 'stopTicks', { target: 'primary', after: 50, how: 'break' }),
    ).toEqual({
      seen: 50,
      code: null,
    });
    await until(
      () => app.bus.call('primary', 'probe'),
      (p) => p.finallyRan,
      'primary finally ran',
    );

    expect(await app.bus.call(w1, 'stopTicks', { target: w2, after: 50, how: 'abort' })).toEqual({
      seen: 50,
      code: 'ABORTED',
    });
    let probe = await until(
      () => app.bus.call(w2, 'probe'),
      (p) => p.finallyRan,
      'w2 finally ran',
    );
    expect(probe.abortCode).toBe('ABORTED');

    await app.bus.call(w2, 'resetProbe', { stallAt: 20 });
    expect(await app.bus.call(w1, 'stopTicks', { target: w2, after: 20, how: 'timeout' })).toEqual({
      seen: 20,
      code: 'TIMEOUT',
    });
    probe = await until(
      () => app.bus.call(w2, 'probe'),
      (p) => p.finallyRan,
      'w2 finally ran',
    );
    expect(probe.abortCode).toBe('ABORTED');
  });
});

describe('failures mid-stream', () => {
  it('an error thrown mid-stream reaches the consumer as REMOTE after every item sent before it', async () => {
    const seen: number[] = [];
    const error = await rejection(
      (async () => {
        for await (const x of app.bus.stream(w2, 'failAfter', 1_000)) seen.push(x);
      })(),
    );
    expect(seen).toHaveLength(1_000);
    expect(seen[999]).toBe(999);
    expect(error.code).toBe('REMOTE');
    expect(error.message).toContain('export failed midway');
    expect((error.cause as { data?: unknown }).data).toEqual({ rows: 1_000 });
  });

  it('a producer SIGKILLed mid-stream rejects its consumers with TARGET_EXITED, in the primary and in a worker', async () => {
    const victim = app.workers().find((w) => w.id === w2)!;
    const fromWorker = app.bus.call(w1, 'stopTicks', { target: w2, after: 1e9, how: 'break' });
    let seen = 0;
    const fromPrimary = rejection(
      (async () => {
        for await (const _ of app.bus.stream(w2, 'ticks')) {
          if (++seen === 1_000) process.kill(victim.pid!, 'SIGKILL');
        }
      })(),
    );
    expect((await fromPrimary).code).toBe('TARGET_EXITED');
    expect(await fromWorker).toEqual({ seen: expect.any(Number), code: 'TARGET_EXITED' });
    // The supervisor replaces it; the next afterEach waits for nothing left pending.
    await until(
      () => app.workers().length,
      (n) => n === 2,
      'replacement',
      20_000,
    );
  }, 40_000);
});
