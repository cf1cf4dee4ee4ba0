/**
 * Prometheus metrics on a real cluster: the bus's own metrics by slot, the app's prom-client
 * metrics of the workers (aggregated and per slot), a slow worker giving a partial scrape, and a
 * primary without prom-client. The text is read with parse-prometheus-text-format.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { BusError, type ClusterApp, createMetricsScraper } from '../../src/index.js';
import { families, samples, sampleValue } from '../prometheus.js';
import { contract } from './fixtures/metrics-contract.js';
import { fixture, rejection, start, stop, until } from './fixtures/supervisor-helpers.js';

type App = ClusterApp<typeof contract>;
const WORKER = fixture('metrics-worker.ts');

let app: App | undefined;
afterEach(async () => {
  await stop(app);
  app = undefined;
});

/** Starts the metrics fixture cluster, with the primary's `ping` and `fail` handlers. */
async function startMetrics(options: Parameters<typeof start<typeof contract>>[2] = {}) {
  const running = await start(contract, WORKER, options);
  running.bus.handle('ping', () => 'pong' as const);
  running.bus.handle('fail', () => {
    throw new Error('the primary fails on purpose');
  });
  return running;
}

async function scrape(running: App) {
  return families(await running.metrics());
}

describe("the bus's own metrics", () => {
  it('count calls, requests served, events published and store ops exactly, by slot, never by pid', async () => {
    app = await startMetrics({ health: { intervalMs: 200 } });
    const running = app;
    const before = await scrape(running);
    const delta = (name: string, labels: Record<string, string>, after: typeof before) =>
      (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);

    for (let i = 0; i < 7; i++) await running.bus.call({ slot: 0 }, 'echo', i);
    await rejection(running.bus.call({ slot: 1 }, 'fail'));
    await running.bus.call({ slot: 1 }, 'callPrimary', { times: 5 });
    await running.bus.call({ slot: 0 }, 'publish', { times: 4 });
    await running.bus.call({ slot: 1 }, 'storeOps', { times: 3 });
    const after = await scrape(running);

    const calls = 'clusterbus_rpc_calls_total';
    const served = 'clusterbus_rpc_served_total';
    expect(delta(calls, { slot: 'primary', method: 'echo', code: 'OK' }, after)).toBe(7);
    expect(delta(calls, { slot: 'primary', method: 'fail', code: 'REMOTE' }, after)).toBe(1);
    expect(delta(served, { slot: '0', method: 'echo', code: 'OK' }, after)).toBe(7);
    expect(delta(served, { slot: '1', method: 'fail', code: 'REMOTE' }, after)).toBe(1);
    // Slot 1's worker called the primary 5 times, and one `fail` that rejected.
    expect(delta(calls, { slot: '1', method: 'ping', code: 'OK' }, after)).toBe(5);
    expect(delta(calls, { slot: '1', method: 'fail', code: 'REMOTE' }, after)).toBe(1);
    expect(delta(served, { slot: 'primary', method: 'ping', code: 'OK' }, after)).toBe(5);
    expect(delta(served, { slot: 'primary', method: 'fail', code: 'REMOTE' }, after)).toBe(1);
    expect(delta('clusterbus_events_published_total', { slot: '0', topic: 'tick' }, after)).toBe(4);
    const ops = 'clusterbus_store_ops_total';
    expect(delta(ops, { slot: 'primary', store: 'counts', op: 'set' }, after)).toBe(3);
    expect(delta(ops, { slot: 'primary', store: 'counts', op: 'get' }, after)).toBe(1);
    // Nothing in flight once everything settled; gauges of every process.
    for (const slot of ['primary', '0', '1']) {
      expect(sampleValue(after, 'clusterbus_rpc_in_flight', { slot })).toBe(0);
      expect(sampleValue(after, 'clusterbus_ipc_queue_bytes', { slot })).toBeGreaterThanOrEqual(0);
    }
    expect(after.get(calls)?.type).toBe('COUNTER');
    expect(after.get('clusterbus_rpc_in_flight')?.type).toBe('GAUGE');
    expect(after.get('clusterbus_rpc_call_duration_seconds')?.type).toBe('HISTOGRAM');

    // The supervisor's view and the health reports.
    for (const slot of ['0', '1']) {
      expect(sampleValue(after, 'clusterbus_workers', { slot, state: 'ready' })).toBe(1);
      expect(sampleValue(after, 'clusterbus_workers', { slot, state: 'draining' })).toBe(0);
      expect(
        sampleValue(after, 'clusterbus_worker_restarts_total', { slot, reason: 'crash' }),
      ).toBe(0);
      expect(sampleValue(after, 'clusterbus_scrape_failures_total', { slot })).toBe(0);
    }
    const reported = await until(
      () => running.metrics().then(families),
      (f) => samples(f, 'clusterbus_worker_rss_bytes').length === 2,
      'health reports of both slots in the metrics',
    );
    for (const slot of ['0', '1']) {
      expect(sampleValue(reported, 'clusterbus_worker_rss_bytes', { slot })).toBeGreaterThan(
        10 * 2 ** 20,
      );
      const p50 = sampleValue(reported, 'clusterbus_worker_event_loop_delay_seconds', {
        slot,
        quantile: '0.5',
      });
      const p99 = sampleValue(reported, 'clusterbus_worker_event_loop_delay_seconds', {
        slot,
        quantile: '0.99',
      });
      expect(p50).toBeGreaterThanOrEqual(0);
      expect(p99).toBeGreaterThanOrEqual(p50!);
    }

    // Labels: slots, never a pid or a worker id (a restart adds no series).
    for (const family of reported.values()) {
      if (!family.name.startsWith('clusterbus_')) continue;
      for (const s of family.metrics) {
        const labels = Object.keys({ ...s.labels });
        expect(labels, family.name).not.toContain('pid');
        expect(labels, family.name).not.toContain('worker');
        if (s.labels?.slot !== undefined) expect(['primary', '0', '1']).toContain(s.labels.slot);
      }
    }
  });

  it('times calls in the duration histogram, in seconds', async () => {
    app = await startMetrics({ workers: 1, health: false });
    for (let i = 0; i < 20; i++) await app.bus.call('any', 'echo', i);
    const parsed = await scrape(app);
    // One series only (the primary's echo): the parser folds histograms of several series.
    const family = parsed.get('clusterbus_rpc_call_duration_seconds');
    expect(family?.type).toBe('HISTOGRAM');
    expect(family?.metrics).toHaveLength(1);
    // By bound (an object's integer-like keys, "1" and "30", come first in its own order).
    const buckets = Object.entries(family!.metrics[0]!.buckets ?? {}).sort(
      (a, b) => Number(a[0].replace('+Inf', 'Infinity')) - Number(b[0].replace('+Inf', 'Infinity')),
    );
    expect(buckets.at(-1)).toEqual(['+Inf', '20']);
    const counts = buckets.map(([, n]) => Number(n));
    for (let i = 1; i < counts.length; i++)
      expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1]!);
    // Twenty calls to a live worker within 30 s each, the last bound before +Inf.
    expect(buckets.find(([le]) => le === '30')?.[1]).toBe('20');
  });

  it('count restarts by reason, in the same series after the worker is replaced', async () => {
    app = await startMetrics({ health: false });
    const running = app;
    const old = running.workers().find((w) => w.slot === 1)!;
    process.kill(old.pid!, 'SIGKILL');
    await until(
      () => running.workers(),
      (ws) => ws.some((w) => w.slot === 1 && w.id !== old.id && w.state === 'ready'),
      'slot 1 replaced after its crash',
    );
    let parsed = await scrape(running);
    const restarts = 'clusterbus_worker_restarts_total';
    expect(sampleValue(parsed, restarts, { slot: '1', reason: 'crash' })).toBe(1);
    expect(sampleValue(parsed, restarts, { slot: '0', reason: 'crash' })).toBe(0);
    await running.restart();
    parsed = await scrape(running);
    for (const slot of ['0', '1']) {
      expect(sampleValue(parsed, restarts, { slot, reason: 'restart' })).toBe(1);
      expect(sampleValue(parsed, 'clusterbus_workers', { slot, state: 'ready' })).toBe(1);
    }
    // The new workers' counters are in the slots' series: one in-flight series per process.
    expect(
      samples(parsed, 'clusterbus_rpc_in_flight')
        .map((s) => s.labels.slot)
        .sort(),
    ).toEqual(['0', '1', 'primary']);
  });
});

describe("the app's metrics of the workers", () => {
  it("are merged by each metric's aggregator, or kept per slot with a slot label; the primary's with primaryRegistry", async () => {
    const primaryRegistry = new Registry();
    new Counter({ name: 'app_jobs_total', help: 'Jobs.', registers: [primaryRegistry] }).inc(10);
    app = await startMetrics({ health: false, metrics: { primaryRegistry } });
    await app.bus.call({ slot: 0 }, 'work', { by: 3 });
    await app.bus.call({ slot: 1 }, 'work', { by: 4 });

    const aggregated = await scrape(app);
    expect(aggregated.get('app_jobs_total')?.type).toBe('COUNTER');
    expect(samples(aggregated, 'app_jobs_total')).toEqual([{ labels: {}, value: 17 }]); // sum
    expect(samples(aggregated, 'app_peak')).toEqual([{ labels: {}, value: 4 }]); // max
    expect(aggregated.has('app_worker_only')).toBe(false); // omit

    const scraper = createMetricsScraper(app, { appMetrics: 'per-slot' });
    const answer = await scraper.scrape();
    scraper.close();
    expect(answer.status).toBe(200);
    expect(answer.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const perSlot = families(answer.body);
    expect(sampleValue(perSlot, 'app_jobs_total', { slot: '0' })).toBe(3);
    expect(sampleValue(perSlot, 'app_jobs_total', { slot: '1' })).toBe(4);
    expect(sampleValue(perSlot, 'app_jobs_total', { slot: 'primary' })).toBe(10);
    expect(samples(perSlot, 'app_jobs_total')).toHaveLength(3);
    expect(sampleValue(perSlot, 'app_worker_only', { slot: '1' })).toBe(1);
    // A closed scraper answers 503; so does one of a closed cluster, whose metrics() rejects.
    expect((await scraper.scrape()).status).toBe(503);
    const other = createMetricsScraper(app);
    await app.close();
    expect(await other.scrape()).toMatchObject({
      status: 503,
      contentType: 'text/plain; charset=utf-8',
    });
    expect((await rejection(app.metrics())).code).toBe('CLOSED');
  });

  it("are read from the app's own registry after bus.metrics.useRegistry(registry)", async () => {
    app = await startMetrics({ workers: 2, health: false });
    await app.bus.call({ slot: 0 }, 'ownRegistry');
    await app.bus.call({ slot: 1 }, 'ownRegistry');
    const parsed = await scrape(app);
    expect(samples(parsed, 'app_own_total')).toEqual([{ labels: {}, value: 3 }]); // 1 + 2
    expect(parsed.has('app_jobs_total')).toBe(false); // the default registry is not read any more
  });

  it('leave a slow worker out within about the timeout, and count it in clusterbus_scrape_failures_total', async () => {
    const collectTimeoutMs = 1_000;
    const slowMs = 3_500;
    app = await startMetrics({ health: false, metrics: { collectTimeoutMs } });
    await app.bus.call({ slot: 0 }, 'work', { by: 3 });
    await app.bus.call({ slot: 1 }, 'work', { by: 4 });
    await app.bus.call({ slot: 1 }, 'slowCollect', { ms: slowMs });

    const t0 = performance.now();
    const parsed = await scrape(app);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(collectTimeoutMs - 50);
    expect(elapsed).toBeLessThan(slowMs - 1_000); // about the timeout, not the slow worker's time
    // Slot 0 is there; slot 1 is not, and is counted.
    expect(samples(parsed, 'app_jobs_total')).toEqual([{ labels: {}, value: 3 }]);
    expect(
      samples(parsed, 'clusterbus_rpc_in_flight')
        .map((s) => s.labels.slot)
        .sort(),
    ).toEqual(['0', 'primary']);
    const failures = 'clusterbus_scrape_failures_total';
    expect(sampleValue(parsed, failures, { slot: '1' })).toBe(1);
    expect(sampleValue(parsed, failures, { slot: '0' })).toBe(0);
    expect(sampleValue(parsed, 'clusterbus_workers', { slot: '1', state: 'ready' })).toBe(1);

    // Once it answers in time again, it is back, and the failures stay counted.
    await app.bus.call({ slot: 1 }, 'slowCollect', { ms: 0 });
    const back = await until(
      () => app!.metrics().then(families),
      (f) => samples(f, 'app_jobs_total')[0]?.value === 7,
      'slot 1 back in the scrape',
    );
    expect(sampleValue(back, failures, { slot: '1' })).toBeGreaterThanOrEqual(1);
  });
});

describe('a worker that dies during a scrape', () => {
  it('is left out as soon as it is gone, not at its timeout, and counted', async () => {
    app = await startMetrics({ health: false, metrics: { collectTimeoutMs: 8_000 } });
    const running = app;
    await running.bus.call({ slot: 1 }, 'slowCollect', { ms: 20_000 });
    const victim = running.workers().find((w) => w.slot === 1)!;
    const t0 = performance.now();
    const scraping = running.metrics();
    setTimeout(() => process.kill(victim.pid!, 'SIGKILL'), 300);
    const parsed = families(await scraping);
    expect(performance.now() - t0).toBeLessThan(6_000); // settled by the exit, not the 8 s timeout
    expect(sampleValue(parsed, 'clusterbus_scrape_failures_total', { slot: '1' })).toBe(1);
    expect(sampleValue(parsed, 'clusterbus_scrape_failures_total', { slot: '0' })).toBe(0);
    expect(samples(parsed, 'app_slow')).toEqual([{ labels: {}, value: 1 }]); // slot 0's only
    await until(
      () => running.workers(),
      (ws) => ws.some((w) => w.slot === 1 && w.id !== victim.id && w.state === 'ready'),
      'slot 1 replaced',
    );
  });
});

describe('options', () => {
  it('refuses a bad metrics option at startCluster with INVALID_ARGUMENT, before forking', async () => {
    const error = await rejection(startMetrics({ metrics: { appMetrics: 'sum' as never } }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('metrics.appMetrics');
    expect((await rejection(startMetrics({ metrics: { collectTimeoutMs: 0 } }))).code).toBe(
      'INVALID_ARGUMENT',
    );
  });
});

describe('without prom-client', () => {
  const notFound = () =>
    Promise.reject(
      Object.assign(new Error("Cannot find package 'prom-client'"), {
        code: 'ERR_MODULE_NOT_FOUND',
      }),
    );

  it('app.metrics() rejects with NOT_INSTALLED and a scrape answers 501; calls still work', async () => {
    app = await startMetrics({
      workers: 1,
      health: false,
      metrics: { importPromClient: notFound },
    });
    const error = await rejection(app.metrics());
    expect(error).toBeInstanceOf(BusError);
    expect(error.code).toBe('NOT_INSTALLED');
    expect(error.message).toContain('npm install prom-client');
    expect(error.data).toEqual({ module: 'prom-client' });
    const scraper = createMetricsScraper(app);
    const answer = await scraper.scrape();
    scraper.close();
    expect(answer.status).toBe(501);
    expect(answer.contentType).toBe('text/plain; charset=utf-8');
    expect(answer.body).toContain('prom-client is not installed');
    expect(await app.bus.call('any', 'echo', 5)).toBe(5);
  });

  it('in a real primary where prom-client cannot be resolved: NOT_INSTALLED, 501, and the cluster works', () => {
    const hide = fileURLToPath(new URL('./fixtures/no-prom-client.mjs', import.meta.url));
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--import', hide, fixture('metrics-no-prom-primary.ts')],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(child.status, child.stderr).toBe(0);
    const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, child.stdout + child.stderr).toBeDefined();
    const result = JSON.parse(line!.slice('RESULT '.length));
    expect(result.resolvable).toBe('ERR_MODULE_NOT_FOUND');
    expect(result.metrics.code).toBe('NOT_INSTALLED');
    expect(result.scrape.status).toBe(501);
    expect(result.scrape.body).toContain('prom-client is not installed');
    expect(result.call).toBe(5);
  });
});
