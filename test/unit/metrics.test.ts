/**
 * The metrics over in-memory links: the bus observer's counters (calls, served, callAll,
 * published, store ops, label bounds), the renderer (bus metrics and app metrics through
 * prom-client's aggregation), the hub's scrape (partial results, the failure counter, restarts by
 * reason), and loading prom-client.
 */
import { EventEmitter } from 'eventemitter3';
import { AggregatorRegistry, Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BusObserver, DURATION_BUCKETS_SECONDS, OTHER_LABEL } from '../../src/bus/observe.js';
import type { ClusterHealth } from '../../src/health/types.js';
import { type BusError, defineContract } from '../../src/index.js';
import { type MetricsHub, metricsHub } from '../../src/metrics/extension.js';
import { loadPromClient } from '../../src/metrics/prom.js';
import { appMetrics, busMetrics, type ClusterView } from '../../src/metrics/render.js';
import { type MetricJSON, resolveMetricsOptions } from '../../src/metrics/types.js';
import type { ClusterEvents, WorkerInfo } from '../../src/supervisor/events.js';
import { families, samples, sampleValue } from '../prometheus.js';
import {
  expectForbiddenBetweenWorkers,
  harnessPerTest,
  rejection,
  storesPerTest,
} from './helpers.js';

const contract = defineContract({
  methods: {
    add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
    slow: { input: z.number(), output: z.void() },
    boom: { output: z.void() },
    unhandled: {},
  },
  events: { tick: z.number() },
  stores: { counts: z.number() },
});
const start = harnessPerTest(contract);
const startWithStores = storesPerTest(contract);

/** Renders `metrics` as prom-client does for a scrape, and parses the text back. */
async function rendered(...arrays: MetricJSON[][]) {
  const registry = AggregatorRegistry.aggregate(
    arrays as unknown as Parameters<typeof AggregatorRegistry.aggregate>[0],
  );
  return families(await registry.metrics());
}

const noView: ClusterView = {
  workers: [],
  health: [],
  restarts: new Map(),
  scrapeFailures: new Map(),
};

describe('the bus observer', () => {
  it('counts calls by method and code, with their durations, and what each process served', async () => {
    const h = await start(2);
    const [w1, w2] = h.workers as [(typeof h.workers)[0], (typeof h.workers)[0]];
    w1.handle('add', ({ a, b }) => a + b);
    w1.handle('slow', (ms) => new Promise<void>((r) => setTimeout(r, ms)));
    w1.handle('boom', () => {
      throw new Error('boom');
    });
    await new Promise((r) => setTimeout(r, 10)); // the handlers are announced
    for (let i = 0; i < 3; i++) await h.primary.call(1, 'add', { a: i, b: 1 });
    await rejection(h.primary.call(1, 'boom'));
    await rejection(h.primary.call(1, 'add', { a: 'x' } as never)); // BAD_INPUT, refused by w1
    await rejection(h.primary.call(2, 'add', { a: 1, b: 2 })); // NO_HANDLER on w2
    await rejection(h.primary.call(1, 'nope' as never, undefined as never)); // not in the contract
    await h.primary.call(1, 'slow', 30);

    const calls = h.primary.observer.snapshot().calls;
    expect(calls).toEqual({
      add: { OK: 3, BAD_INPUT: 1, NO_HANDLER: 1 },
      boom: { REMOTE: 1 },
      slow: { OK: 1 },
      [OTHER_LABEL]: { INVALID_ARGUMENT: 1 },
    });
    expect(w1.observer.snapshot().served).toEqual({
      add: { OK: 3, BAD_INPUT: 1 },
      boom: { REMOTE: 1 },
      slow: { OK: 1 },
    });
    expect(w2.observer.snapshot().served).toEqual({ add: { NO_HANDLER: 1 } });
    // The 30 ms call is in no bucket below 25 ms; every call is in one bucket.
    const slow = h.primary.observer.snapshot().durations.slow!;
    expect(slow.count).toBe(1);
    expect(slow.sum).toBeGreaterThanOrEqual(0.029);
    const below = DURATION_BUCKETS_SECONDS.findIndex((le) => le >= 0.025);
    expect(slow.buckets.slice(0, below).every((n) => n === 0)).toBe(true);
    expect(slow.buckets.reduce((a, b) => a + b, 0)).toBe(1);
    expect(h.primary.observer.snapshot().durations.add!.count).toBe(5);
  });

  it('counts calls in flight while they are pending, and a callAll as one call per worker', async () => {
    const h = await start(2);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    for (const w of h.workers) w.handle('slow', () => gate);
    h.workers[0]!.handle('add', ({ a, b }) => a + b);
    await new Promise((r) => setTimeout(r, 10));
    const pending = [h.primary.call(1, 'slow', 0), h.primary.call(2, 'slow', 0)];
    expect(h.primary.observer.inFlight).toBe(2);
    release();
    await Promise.all(pending);
    expect(h.primary.observer.inFlight).toBe(0);
    await h.workers[1]!.callAll('add', { a: 1, b: 1 });
    expect(h.workers[1]!.observer.snapshot().calls.add).toEqual({ OK: 1, NO_HANDLER: 1 });
    expect(h.workers[1]!.observer.inFlight).toBe(0);
  });

  it('counts publishes by topic, and none of the system protocols', async () => {
    const h = await start(1);
    for (let i = 0; i < 4; i++) h.workers[0]!.publish('tick', i);
    h.primary.publish('tick', 9);
    expect(h.workers[0]!.observer.snapshot().published).toEqual({ tick: 4 });
    expect(h.primary.observer.snapshot().published).toEqual({ tick: 1 });
    // The handshake and store calls are system calls: not the app's.
    await h.workers[0]!.store('counts')
      .get('k')
      .catch(() => {});
    expect(h.workers[0]!.observer.snapshot().calls).toEqual({});
  });

  it("counts the store host's operations by store and op, locks under $lock", async () => {
    const observer = new BusObserver(contract);
    const h = await startWithStores(1, { observe: (store, op) => observer.storeOp(store, op) });
    const store = h.workers[0]!.store('counts');
    await store.set('a', 1);
    await store.increment('a', 2);
    await store.get('a');
    await h.primary.store('counts').get('a');
    const lease = await h.workers[0]!.lock('job', { ttlMs: 1_000 });
    await lease.release();
    observer.storeOp('nope', 'get'); // a store outside the contract (a hostile request's)
    expect(observer.snapshot().storeOps).toEqual({
      counts: { set: 1, increment: 1, get: 2 },
      $lock: { acquire: 1, release: 1 },
      [OTHER_LABEL]: { get: 1 },
    });
  });
});

describe('the renderer', () => {
  it('labels every bus series by slot, with cumulative histogram buckets', async () => {
    const bus = {
      calls: { add: { OK: 3, TIMEOUT: 1 } },
      durations: {
        add: {
          buckets: [...DURATION_BUCKETS_SECONDS.map((_, i) => (i === 2 ? 3 : 0)), 1],
          sum: 30.01,
          count: 4,
        },
      },
      served: { add: { OK: 2 } },
      inFlight: 1,
      published: { tick: 5 },
      storeOps: { counts: { set: 2 } },
    };
    const view: ClusterView = {
      workers: [
        { slot: 0, state: 'ready' },
        { slot: 0, state: 'starting' },
      ],
      health: [{ slot: 0, rssBytes: 50_000_000, eventLoopDelayMs: { p50: 10, p99: 20, max: 40 } }],
      restarts: new Map([[0, new Map([['crash' as const, 2]])]]),
      scrapeFailures: new Map([[0, 1]]),
    };
    const parsed = await rendered(busMetrics([{ slot: '0', bus, queueBytes: 64 }], view));
    expect(
      sampleValue(parsed, 'clusterbus_rpc_calls_total', {
        slot: '0',
        method: 'add',
        code: 'TIMEOUT',
      }),
    ).toBe(1);
    expect(
      sampleValue(parsed, 'clusterbus_rpc_served_total', { slot: '0', method: 'add', code: 'OK' }),
    ).toBe(2);
    expect(sampleValue(parsed, 'clusterbus_rpc_in_flight', { slot: '0' })).toBe(1);
    expect(
      sampleValue(parsed, 'clusterbus_events_published_total', { slot: '0', topic: 'tick' }),
    ).toBe(5);
    expect(sampleValue(parsed, 'clusterbus_ipc_queue_bytes', { slot: '0' })).toBe(64);
    expect(
      sampleValue(parsed, 'clusterbus_store_ops_total', { slot: '0', store: 'counts', op: 'set' }),
    ).toBe(2);
    expect(sampleValue(parsed, 'clusterbus_workers', { slot: '0', state: 'ready' })).toBe(1);
    expect(sampleValue(parsed, 'clusterbus_workers', { slot: '0', state: 'starting' })).toBe(1);
    expect(sampleValue(parsed, 'clusterbus_workers', { slot: '0', state: 'draining' })).toBe(0);
    expect(
      sampleValue(parsed, 'clusterbus_worker_restarts_total', { slot: '0', reason: 'crash' }),
    ).toBe(2);
    expect(
      sampleValue(parsed, 'clusterbus_worker_restarts_total', { slot: '0', reason: 'memory' }),
    ).toBe(0);
    expect(sampleValue(parsed, 'clusterbus_scrape_failures_total', { slot: '0' })).toBe(1);
    expect(sampleValue(parsed, 'clusterbus_worker_rss_bytes', { slot: '0' })).toBe(50_000_000);
    expect(
      sampleValue(parsed, 'clusterbus_worker_event_loop_delay_seconds', {
        slot: '0',
        quantile: '0.99',
      }),
    ).toBe(0.02);
    expect(
      sampleValue(parsed, 'clusterbus_worker_event_loop_delay_seconds', {
        slot: '0',
        quantile: '1',
      }),
    ).toBe(0.04);
    const histogram = parsed.get('clusterbus_rpc_call_duration_seconds')!;
    expect(histogram.type).toBe('HISTOGRAM');
    const buckets = histogram.metrics[0]!.buckets!;
    expect(buckets['0.001']).toBe('0');
    expect(buckets['0.0025']).toBe('3');
    expect(buckets['30']).toBe('3');
    expect(buckets['+Inf']).toBe('4');
  });

  it("keeps the app's series per slot with a slot label, or leaves them to their aggregator; never clusterbus_*", async () => {
    const worker = (slot: number, n: number): MetricJSON[] => [
      {
        name: 'app_total',
        help: 'h',
        type: 'counter',
        aggregator: 'sum',
        values: [{ value: n, labels: { route: 'a' } }],
      },
      {
        name: 'app_first',
        help: 'h',
        type: 'gauge',
        aggregator: 'first',
        values: [{ value: slot + 10, labels: {} }],
      },
      {
        name: 'clusterbus_rpc_in_flight',
        help: 'forged',
        type: 'gauge',
        aggregator: 'sum',
        values: [{ value: 99, labels: {} }],
      },
    ];
    const bySlot = new Map([
      ['0', worker(0, 2)],
      ['1', worker(1, 5)],
    ]);
    const aggregated = await rendered(...appMetrics(bySlot, 'aggregate'));
    expect(samples(aggregated, 'app_total')).toEqual([{ labels: { route: 'a' }, value: 7 }]);
    expect(samples(aggregated, 'app_first')).toEqual([{ labels: {}, value: 10 }]); // slot 0's: the first in order
    expect(aggregated.has('clusterbus_rpc_in_flight')).toBe(false);
    const perSlot = await rendered(...appMetrics(bySlot, 'per-slot'));
    expect(sampleValue(perSlot, 'app_total', { route: 'a', slot: '0' })).toBe(2);
    expect(sampleValue(perSlot, 'app_total', { route: 'a', slot: '1' })).toBe(5);
    expect(sampleValue(perSlot, 'app_first', { slot: '1' })).toBe(11);
    expect(perSlot.has('clusterbus_rpc_in_flight')).toBe(false);
  });

  it('keeps the counters of a slot with no live worker (scaled down), and no clusterbus_workers series for it', async () => {
    const empty = {
      calls: {},
      durations: {},
      served: {},
      inFlight: 0,
      published: {},
      storeOps: {},
    };
    const view: ClusterView = {
      workers: [{ slot: 0, state: 'ready' }],
      health: [],
      restarts: new Map([[1, new Map([['crash' as const, 1]])]]),
      scrapeFailures: new Map([
        [0, 0],
        [1, 2],
      ]),
    };
    const parsed = await rendered(
      busMetrics([{ slot: 'primary', bus: empty, queueBytes: 0 }], view),
    );
    expect(samples(parsed, 'clusterbus_workers').map((s) => s.labels.slot)).toEqual([
      '0',
      '0',
      '0',
    ]);
    expect(
      sampleValue(parsed, 'clusterbus_worker_restarts_total', { slot: '1', reason: 'crash' }),
    ).toBe(1);
    expect(sampleValue(parsed, 'clusterbus_scrape_failures_total', { slot: '1' })).toBe(2);
  });

  it('renders a cluster with no worker: only the primary', async () => {
    const empty = {
      calls: {},
      durations: {},
      served: {},
      inFlight: 0,
      published: {},
      storeOps: {},
    };
    const parsed = await rendered(
      busMetrics([{ slot: 'primary', bus: empty, queueBytes: 0 }], noView),
    );
    expect(samples(parsed, 'clusterbus_rpc_in_flight')).toEqual([
      { labels: { slot: 'primary' }, value: 0 },
    ]);
    expect(samples(parsed, 'clusterbus_workers')).toEqual([]);
  });
});

/** A stand-in for the ClusterApp: its workers are the harness's, slot = id - 1, all ready. */
class FakeCluster extends EventEmitter<ClusterEvents, unknown> {
  constructor(private readonly ids: () => number[]) {
    super();
  }
  workers(): WorkerInfo[] {
    return this.ids().map((id) => ({
      id,
      slot: id - 1,
      pid: 1_000 + id,
      connected: true,
      state: 'ready',
    }));
  }
  health(): ClusterHealth {
    return { at: Date.now(), monitoring: false, workers: [] };
  }
}

describe("the hub's scrape", () => {
  async function hubOver(count: number, options: Parameters<typeof resolveMetricsOptions>[0] = {}) {
    let hub!: MetricsHub;
    let cluster!: FakeCluster;
    const h = await start(count, {
      install: (primary) => {
        cluster = new FakeCluster(() => primary.connectedWorkers());
        hub = primary.install(metricsHub(resolveMetricsOptions(options), cluster, primary));
      },
    });
    return { h, hub, cluster };
  }

  it("gathers every worker's counters and app metrics, and counts restarts by reason", async () => {
    const { h, hub, cluster } = await hubOver(2);
    for (const [i, w] of h.workers.entries()) {
      const registry = new Registry();
      new Counter({ name: 'app_jobs_total', help: 'jobs', registers: [registry] }).inc(i + 1);
      w.metrics.useRegistry(registry);
      w.publish('tick', i);
    }
    cluster.emit('worker:replace', { workerId: 1, slot: 0, replacementId: 3, reason: 'memory' });
    cluster.emit('worker:exit', {
      workerId: 2,
      slot: 1,
      pid: 1,
      code: null,
      signal: 'SIGKILL',
      planned: false,
      replacedBy: 4,
    });
    cluster.emit('worker:exit', {
      workerId: 2,
      slot: 1,
      pid: 1,
      code: 0,
      signal: null,
      planned: true,
      replacedBy: undefined,
    });
    cluster.emit('worker:backoff', { slot: 1, delayMs: 100, restarts: 2 });
    const parsed = families(await hub.text());
    expect(samples(parsed, 'app_jobs_total')).toEqual([{ labels: {}, value: 3 }]);
    expect(
      sampleValue(parsed, 'clusterbus_events_published_total', { slot: '0', topic: 'tick' }),
    ).toBe(1);
    expect(
      sampleValue(parsed, 'clusterbus_events_published_total', { slot: '1', topic: 'tick' }),
    ).toBe(1);
    expect(
      sampleValue(parsed, 'clusterbus_worker_restarts_total', { slot: '0', reason: 'memory' }),
    ).toBe(1);
    expect(
      sampleValue(parsed, 'clusterbus_worker_restarts_total', { slot: '1', reason: 'crash' }),
    ).toBe(2);
    expect(sampleValue(parsed, 'clusterbus_scrape_failures_total', { slot: '0' })).toBe(0);
    const perSlot = families((await hub.render({ appMetrics: 'per-slot' })).text);
    expect(sampleValue(perSlot, 'app_jobs_total', { slot: '1' })).toBe(2);
  });

  it('leaves out a worker that answers late or whose registry throws, and counts each', async () => {
    const { h, hub } = await hubOver(3, { collectTimeoutMs: 50 });
    let finished!: () => void;
    const late = new Promise<void>((r) => (finished = r));
    h.workers[1]!.metrics.useRegistry({
      getMetricsAsJSON: () =>
        new Promise((resolve) =>
          setTimeout(() => {
            resolve([]);
            finished();
          }, 300),
        ),
    });
    h.workers[2]!.metrics.useRegistry({
      getMetricsAsJSON: () => Promise.reject(new Error('collect threw')),
    });
    const t0 = performance.now();
    const parsed = families(await hub.text());
    expect(performance.now() - t0).toBeLessThan(300); // the late worker is not waited for
    expect(sampleValue(parsed, 'clusterbus_scrape_failures_total', { slot: '0' })).toBe(0);
    expect(sampleValue(parsed, 'clusterbus_scrape_failures_total', { slot: '1' })).toBe(1);
    expect(sampleValue(parsed, 'clusterbus_scrape_failures_total', { slot: '2' })).toBe(1);
    // The late one's bus metrics are missing; the throwing one's bus metrics are there.
    expect(
      samples(parsed, 'clusterbus_rpc_in_flight')
        .map((s) => s.labels.slot)
        .sort(),
    ).toEqual(['0', '2', 'primary']);
    await late;
  });

  it("adds the primary's own registry as one more process, and counts it when it throws", async () => {
    const primaryRegistry = new Registry();
    new Counter({ name: 'app_jobs_total', help: 'jobs', registers: [primaryRegistry] }).inc(5);
    const { h, hub } = await hubOver(1, { primaryRegistry });
    const registry = new Registry();
    new Counter({ name: 'app_jobs_total', help: 'jobs', registers: [registry] }).inc(2);
    h.workers[0]!.metrics.useRegistry(registry);
    let parsed = families(await hub.text());
    expect(samples(parsed, 'app_jobs_total')).toEqual([{ labels: {}, value: 7 }]);
    expect(sampleValue(parsed, 'clusterbus_scrape_failures_total', { slot: 'primary' })).toBe(0);
    parsed = families((await hub.render({ appMetrics: 'per-slot' })).text);
    expect(sampleValue(parsed, 'app_jobs_total', { slot: 'primary' })).toBe(5);
    const throwing = { getMetricsAsJSON: () => Promise.reject(new Error('no')) };
    parsed = families((await hub.render({ primaryRegistry: throwing })).text);
    expect(samples(parsed, 'app_jobs_total')).toEqual([{ labels: {}, value: 2 }]);
    expect(sampleValue(parsed, 'clusterbus_scrape_failures_total', { slot: 'primary' })).toBe(1);
    expect(() => resolveMetricsOptions({ primaryRegistry: {} as never })).toThrow(
      /primaryRegistry/,
    );
  });

  it('leaves out and reports a worker whose answer is malformed; useRegistry(undefined) goes back to the default', async () => {
    const { h, hub } = await hubOver(2);
    const errors: BusError[] = [];
    h.primary.on('error', (e) => errors.push(e));
    h.workers[0]!.metrics.useRegistry({
      getMetricsAsJSON: async () => [{ name: 'x', type: 'bogus' }],
    });
    const own = new Registry();
    new Counter({ name: 'app_own_total', help: 'own', registers: [own] }).inc();
    h.workers[1]!.metrics.useRegistry(own);
    let parsed = families(await hub.text());
    expect(sampleValue(parsed, 'clusterbus_scrape_failures_total', { slot: '0' })).toBe(1);
    expect(samples(parsed, 'clusterbus_rpc_in_flight').map((s) => s.labels.slot)).toEqual([
      'primary',
      '1',
    ]);
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ['PROTOCOL', 'a malformed metrics answer from worker 1 (slot 0)'],
    ]);
    expect(samples(parsed, 'app_own_total')).toEqual([{ labels: {}, value: 1 }]);
    h.workers[1]!.metrics.useRegistry(undefined); // prom-client's default registry: no app_own_total
    parsed = families(await hub.text());
    expect(parsed.has('app_own_total')).toBe(false);
  });

  it('gives the bus counters of every process without rendering them (for a stats endpoint)', async () => {
    const { h, hub } = await hubOver(2);
    h.workers[1]!.publish('tick', 1);
    const counters = await hub.counters();
    expect([...counters.keys()]).toEqual(['primary', '0', '1']);
    expect(counters.get('1')?.bus.published).toEqual({ tick: 1 });
    expect(counters.get('0')?.bus.published).toEqual({});
  });

  it("is the hub's protocol: a worker's $metrics.collect to another worker is refused with FORBIDDEN", async () => {
    const { h } = await hubOver(2);
    await expectForbiddenBetweenWorkers(h, '$metrics.collect', undefined);
  });

  it('refuses a bad option, and every scrape once the bus is closed', async () => {
    const { h, hub } = await hubOver(1);
    expect(() => resolveMetricsOptions({ appMetrics: 'sum' as never })).toThrow(/appMetrics/);
    expect(() => resolveMetricsOptions({ collectTimeoutMs: -1 })).toThrow(/collectTimeoutMs/);
    expect((await rejection(hub.render({ collectTimeoutMs: 0 }))).code).toBe('INVALID_ARGUMENT');
    expect(() => h.workers[0]!.metrics.useRegistry({} as never)).toThrow(/getMetricsAsJSON/);
    await h.primary.close();
    expect((await rejection(hub.text())).code).toBe('CLOSED');
  });
});

describe('loading prom-client', () => {
  it('is NOT_INSTALLED for a missing module or one that is not prom-client, PROTOCOL otherwise', async () => {
    const missing = Object.assign(new Error("Cannot find package 'prom-client'"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    const e1 = await rejection(loadPromClient(() => Promise.reject(missing)));
    expect(e1.code).toBe('NOT_INSTALLED');
    expect(e1.cause).toBe(missing);
    expect((await rejection(loadPromClient(async () => ({})))).code).toBe('NOT_INSTALLED');
    expect(
      (await rejection(loadPromClient(() => Promise.reject(new SyntaxError('bad'))))).code,
    ).toBe('PROTOCOL');
    const real = await loadPromClient(() => import('prom-client'));
    expect(typeof real.AggregatorRegistry.aggregate).toBe('function');
  });
});
