/**
 * A hostile worker against the primary and the other workers, on real processes: it skips its
 * bus and writes raw frames on its IPC channel. The system protocols stay the primary's, frames
 * over the limits are refused where they are received (the primary stays up), a closed bus can
 * take nothing more, and a flood of garbage costs a handful of reports.
 */
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BusError, type ClusterApp, startCluster } from '../../src/index.js';
import { hostileContract } from './fixtures/hostile-contract.js';
import { expectNoProcessLeft, until } from './helpers.js';

const HOSTILE = fileURLToPath(new URL('./fixtures/hostile-worker.ts', import.meta.url));
type App = ClusterApp<typeof hostileContract>;

describe('a hostile worker', () => {
  let app: App;
  let w1: number;
  let w2: number;
  const reported: BusError[] = [];

  beforeAll(async () => {
    app = await startCluster({
      contract: hostileContract,
      workers: 2,
      exec: HOSTILE,
      // A larger stack than the primary's, so a hostile worker can serialize what the primary
      // could not serialize again when forwarding it (the crash these tests guard against).
      execArgv: ['--import', 'tsx', '--stack-size=4000'],
      config: { mode: 'safe' },
      maxPayloadBytes: 1024 * 1024,
      maxQueueBytes: 1024 * 1024,
    });
    app.bus.on('error', (e) => reported.push(e));
    [w1, w2] = app
      .workers()
      .map((w) => w.id)
      .sort((a, b) => a - b) as [number, number];
  });

  afterAll(async () => {
    // The worker that said bye cannot drain, and the trap calls never end: do not wait 10 s.
    await app?.close({ timeoutMs: 1_000 });
    expectNoProcessLeft();
  });

  const reportedWith = (code: string) => reported.filter((e) => e.code === code);

  it('cannot drain the other workers: a raw $drain to all, to a worker or to a slot is refused with FORBIDDEN', async () => {
    for (const fields of [{ t: 'all' }, { t: w2 }, { n: 1 }, { t: 'any' }]) {
      const answer = await app.bus.call(w1, 'forge', {
        method: '$drain.start',
        payload: { timeoutMs: 1_000 },
        fields,
      });
      expect(answer, JSON.stringify(fields)).toMatchObject({ ok: false, code: 'FORBIDDEN' });
    }
    expect(await app.bus.call(w2, 'state')).toMatchObject({ draining: false });
    expect(await app.bus.call(w1, 'state')).toMatchObject({ draining: false });
    expect(app.workers().map((w) => w.state)).toEqual(['ready', 'ready']);
    expect(reportedWith('FORBIDDEN').length).toBeGreaterThanOrEqual(4);
  });

  it("cannot change another worker's config: a raw $config routed to it is refused, and the next update applies everywhere", async () => {
    const answer = await app.bus.call(w1, 'forge', {
      method: '$config.apply',
      payload: { v: 99, value: { mode: 'forged' } },
      fields: { t: w2 },
    });
    expect(answer).toMatchObject({ ok: false, code: 'FORBIDDEN' });
    expect(await app.bus.call(w2, 'state')).toMatchObject({ configVersion: 1 });
    const update = await app.config.update({ mode: 'next' });
    expect(update.accepted).toBe(true);
    expect(await app.bus.call(w2, 'state')).toMatchObject({ configVersion: 2 });
  });

  it('cannot kill the primary with a deeply nested event: refused with PAYLOAD_TOO_DEEP, reported, never delivered', async () => {
    await app.bus.call(w1, 'sendDeepEvent', { depth: 8_000 });
    await until(
      () => reportedWith('PAYLOAD_TOO_DEEP').length,
      (n) => n > 0,
      'the deep event reported',
    );
    expect(await app.bus.call(w2, 'newsCount')).toBe(0);
    expect(await app.bus.call(w2, 'newsCount')).toBe(0);
  });

  it('cannot kill the primary with a deeply nested answer to a routed call: the caller gets PAYLOAD_TOO_DEEP', async () => {
    const outcome = await app.bus.call(w1, 'callTrap', { target: w2, depth: 8_000 });
    expect(outcome).toMatchObject({ ok: false, code: 'PAYLOAD_TOO_DEEP' });
    // The primary and both workers still serve.
    expect(await app.bus.call(w2, 'newsCount')).toBe(0);
    expect(await app.bus.call(w1, 'newsCount')).toBe(0);
  });

  it('enforces maxPayloadBytes where frames are received: a raw large event is not forwarded, a raw large $state.set is not stored', async () => {
    await app.bus.call(w1, 'sendLargeEvent', { bytes: 2 * 1024 * 1024 });
    await until(
      () => reportedWith('PAYLOAD_TOO_LARGE').length,
      (n) => n > 0,
      'the large event reported',
    );
    expect(await app.bus.call(w2, 'newsCount')).toBe(0);
    const set = await app.bus.call(w1, 'forge', {
      method: '$state.set',
      payload: { s: 'docs', k: 'big' },
      fill: { key: 'v', bytes: 2 * 1024 * 1024 },
    });
    expect(set).toMatchObject({ ok: false, code: 'PAYLOAD_TOO_LARGE' });
    expect(await app.bus.store('docs').get('big')).toBeUndefined();
    // A write within the limit still works, and reads back.
    await app.bus.store('docs').set('small', { ok: true });
    expect(await app.bus.store('docs').get('small')).toEqual({ ok: true });
  });

  it('keeps the memory a blocked subscriber costs near maxQueueBytes (1 MiB), whatever the payload shape (regression: nested payloads were undercounted, ~90 MiB)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const blocked = app.bus.call(w2, 'block', { ms: 4_000 });
    await new Promise((r) => setTimeout(r, 200)); // it is busy now
    gc();
    const before = process.memoryUsage().heapUsed;
    // Fresh strings in every event, as payloads parsed from a channel have (none shared).
    let seq = 0;
    const doc = () => {
      seq++;
      return {
        n: {
          a: { b: { c: { d: String(seq).padStart(5_000, 'x') } } },
          list: [
            1,
            ...Array.from({ length: 50 }, (_, i) => ({ k: String(seq + i).padStart(1_000, 'y') })),
          ],
        },
      };
    };
    const size = JSON.stringify(doc()).length;
    const overloadedBefore = reportedWith('OVERLOADED').length;
    let published = 0;
    const end = performance.now() + 1_500;
    while (performance.now() < end) {
      for (let i = 0; i < 20; i++) app.bus.publish('news', doc());
      published += 20;
      await new Promise((r) => setImmediate(r));
    }
    gc();
    const growth = process.memoryUsage().heapUsed - before;
    const sent = published * size;
    console.log(
      `blocked subscriber: ${published} events (${(sent / 2 ** 20).toFixed(0)} MiB of JSON) published in 1.5 s, heap growth after GC ${(growth / 2 ** 20).toFixed(1)} MiB with maxQueueBytes 1 MiB`,
    );
    expect(reportedWith('OVERLOADED').length).toBeGreaterThan(overloadedBefore);
    expect(sent).toBeGreaterThan(32 * 2 ** 20);
    expect(growth).toBeLessThan(24 * 2 ** 20);
    await blocked;
  });

  it('aggregates a flood: one IPC message of 100,000 malformed frames gives a handful of reports and one summary', async () => {
    const before = reportedWith('PROTOCOL').length;
    await app.bus.call(w1, 'sendMalformedBatch', { count: 100_000 });
    const summary = await until(
      () => reportedWith('PROTOCOL').find((e) => e.data?.suppressed !== undefined),
      (e) => e !== undefined,
      'the summary report',
    );
    const count = reportedWith('PROTOCOL').length - before;
    expect(count).toBeLessThanOrEqual(11);
    expect(summary?.data?.suppressed).toBe(100_000 - (count - 1));
  });

  it('refuses frames sent after its bye: the lock it asks for is never taken, and nothing is held when it is gone', async () => {
    const before = reportedWith('PROTOCOL').length;
    await app.bus.call(w1, 'forgeAfterBye', {
      requests: [
        { method: '$state.acquire', payload: { n: 'after-bye', a: 1, ttl: 600_000, wait: 0 } },
        { method: '$state.watch', payload: { s: 'docs', w: 1, p: '' } },
      ],
    });
    await until(
      () => reportedWith('PROTOCOL').slice(before),
      (es) => es.filter((e) => /after its bye/.test(e.message)).length >= 2,
      'both forged frames refused',
    );
    const lease = await app.bus.lock('after-bye', { waitMs: 0 });
    await lease.release();
  });
});
