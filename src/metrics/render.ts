/**
 * From counters to metrics: the bus's own metrics of every slot (its counters, the supervisor's
 * view, the health reports) as prom-client's JSON, and the app's metrics of the workers,
 * relabelled per slot or left to `AggregatorRegistry.aggregate` to merge. Pure functions: the hub
 * (hub.ts) gathers their inputs, prom-client renders their output as text.
 *
 * @module
 */
import { type BusSnapshot, DURATION_BUCKETS_SECONDS } from '../bus/observe.js';
import type { WorkerState } from '../health/types.js';
import {
  type AppMetricsMode,
  type MetricJSON,
  type MetricType,
  type MetricValueJSON,
  PRIMARY_SLOT,
} from './types.js';

/** Why a slot's worker was replaced, as `clusterbus_worker_restarts_total` labels it. */
export type RestartReason = 'crash' | 'restart' | 'missed-pings' | 'memory';

/** Every {@link RestartReason}: each slot has a series of each, from 0. */
export const RESTART_REASONS: readonly RestartReason[] = [
  'crash',
  'restart',
  'missed-pings',
  'memory',
];

/** Every worker state, as `clusterbus_workers` labels it. */
export const WORKER_STATES: readonly WorkerState[] = ['starting', 'ready', 'draining'];

/** One process's counters: the primary's (`slot: 'primary'`) or one slot's worker's. */
export interface SlotCounters {
  /** The `slot` label: `'primary'`, or the worker's slot (0..N-1). */
  readonly slot: string;
  readonly bus: BusSnapshot;
  /** Bytes waiting in its outbound queues. */
  readonly queueBytes: number;
}

/** What the primary knows of its workers, by slot. */
export interface ClusterView {
  /** The live workers, with their slot and state. */
  readonly workers: readonly { readonly slot: number; readonly state: WorkerState }[];
  /** The last health report of each slot's serving worker. */
  readonly health: readonly {
    readonly slot: number;
    readonly rssBytes: number;
    readonly eventLoopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
  }[];
  /** Replacements, by slot, then by reason. */
  readonly restarts: ReadonlyMap<number, ReadonlyMap<RestartReason, number>>;
  /** Workers left out of a scrape, by slot. */
  readonly scrapeFailures: ReadonlyMap<number, number>;
  /** Scrapes whose `primaryRegistry` threw; undefined without one. */
  readonly primaryScrapeFailures?: number | undefined;
}

function metric(
  name: string,
  type: MetricType,
  help: string,
  values: MetricValueJSON[],
): MetricJSON {
  return { name, help, type, aggregator: 'sum', values };
}

/** The bus's own metrics, every series labelled by `slot`. */
export function busMetrics(processes: readonly SlotCounters[], view: ClusterView): MetricJSON[] {
  const calls: MetricValueJSON[] = [];
  const served: MetricValueJSON[] = [];
  const durations: MetricValueJSON[] = [];
  const inFlight: MetricValueJSON[] = [];
  const published: MetricValueJSON[] = [];
  const queue: MetricValueJSON[] = [];
  const storeOps: MetricValueJSON[] = [];
  const histogram = 'clusterbus_rpc_call_duration_seconds';
  for (const { slot, bus, queueBytes } of processes) {
    for (const [method, codes] of Object.entries(bus.calls)) {
      for (const [code, n] of Object.entries(codes)) {
        calls.push({ value: n, labels: { slot, method, code } });
      }
    }
    for (const [method, codes] of Object.entries(bus.served)) {
      for (const [code, n] of Object.entries(codes)) {
        served.push({ value: n, labels: { slot, method, code } });
      }
    }
    for (const [method, d] of Object.entries(bus.durations)) {
      let cumulative = 0;
      DURATION_BUCKETS_SECONDS.forEach((le, i) => {
        cumulative += d.buckets[i] ?? 0;
        const labels = { slot, method, le };
        durations.push({ value: cumulative, labels, metricName: `${histogram}_bucket` });
      });
      const labels = { slot, method };
      durations.push({
        value: d.count,
        labels: { ...labels, le: '+Inf' },
        metricName: `${histogram}_bucket`,
      });
      durations.push({ value: d.sum, labels, metricName: `${histogram}_sum` });
      durations.push({ value: d.count, labels, metricName: `${histogram}_count` });
    }
    inFlight.push({ value: bus.inFlight, labels: { slot } });
    for (const [topic, n] of Object.entries(bus.published)) {
      published.push({ value: n, labels: { slot, topic } });
    }
    queue.push({ value: queueBytes, labels: { slot } });
    for (const [store, ops] of Object.entries(bus.storeOps)) {
      for (const [op, n] of Object.entries(ops))
        storeOps.push({ value: n, labels: { slot, store, op } });
    }
  }
  return [
    metric(
      'clusterbus_rpc_calls_total',
      'counter',
      'Calls issued by this process that settled, by method and code (OK or the BusError code).',
      calls,
    ),
    metric(
      histogram,
      'histogram',
      'Time from issuing a call to its settlement, in seconds.',
      durations,
    ),
    metric(
      'clusterbus_rpc_in_flight',
      'gauge',
      'Calls issued by this process and not settled yet.',
      inFlight,
    ),
    metric(
      'clusterbus_rpc_served_total',
      'counter',
      'Requests this process answered, by method and code (OK or the BusError code).',
      served,
    ),
    metric(
      'clusterbus_events_published_total',
      'counter',
      'Events published by this process, by topic.',
      published,
    ),
    metric(
      'clusterbus_ipc_queue_bytes',
      'gauge',
      'Bytes waiting in the outbound queues of this process (about: JSON length of the frames).',
      queue,
    ),
    metric(
      'clusterbus_store_ops_total',
      'counter',
      'Store and lock operations received by the store host in the primary, by store and op.',
      storeOps,
    ),
    ...clusterMetrics(view),
  ];
}

/** The supervisor's and the health monitor's metrics, by slot. */
function clusterMetrics(view: ClusterView): MetricJSON[] {
  const slots = new Set<number>([
    ...view.workers.map((w) => w.slot),
    ...view.restarts.keys(),
    ...view.scrapeFailures.keys(),
  ]);
  const sorted = [...slots].sort((a, b) => a - b);
  const restarts: MetricValueJSON[] = [];
  const failures: MetricValueJSON[] = [];
  const workers: MetricValueJSON[] = [];
  for (const slot of sorted) {
    const label = String(slot);
    const counted = view.restarts.get(slot);
    for (const reason of RESTART_REASONS) {
      restarts.push({ value: counted?.get(reason) ?? 0, labels: { slot: label, reason } });
    }
    failures.push({ value: view.scrapeFailures.get(slot) ?? 0, labels: { slot: label } });
    const live = view.workers.filter((w) => w.slot === slot);
    if (live.length === 0) continue; // a slot removed by a scale-down keeps its counters only
    for (const state of WORKER_STATES) {
      const n = live.filter((w) => w.state === state).length;
      workers.push({ value: n, labels: { slot: label, state } });
    }
  }
  if (view.primaryScrapeFailures !== undefined) {
    failures.unshift({ value: view.primaryScrapeFailures, labels: { slot: PRIMARY_SLOT } });
  }
  const delay: MetricValueJSON[] = [];
  const rss: MetricValueJSON[] = [];
  for (const h of [...view.health].sort((a, b) => a.slot - b.slot)) {
    const slot = String(h.slot);
    const { p50, p99, max } = h.eventLoopDelayMs;
    delay.push({ value: p50 / 1000, labels: { slot, quantile: '0.5' } });
    delay.push({ value: p99 / 1000, labels: { slot, quantile: '0.99' } });
    delay.push({ value: max / 1000, labels: { slot, quantile: '1' } });
    rss.push({ value: h.rssBytes, labels: { slot } });
  }
  return [
    metric(
      'clusterbus_worker_restarts_total',
      'counter',
      'Workers replaced in their slot, by reason: crash, restart (rolling), missed-pings, memory.',
      restarts,
    ),
    metric(
      'clusterbus_workers',
      'gauge',
      'Live workers, by slot and state (starting, ready, draining).',
      workers,
    ),
    metric(
      'clusterbus_worker_event_loop_delay_seconds',
      'gauge',
      "Event-loop delay of the slot's worker over its last health interval, in seconds: p50, p99 and max (quantile 1).",
      delay,
    ),
    metric(
      'clusterbus_worker_rss_bytes',
      'gauge',
      "Resident set size of the slot's worker at its last health report, in bytes.",
      rss,
    ),
    metric(
      'clusterbus_scrape_failures_total',
      'counter',
      "Scrapes that left the slot's worker out: it did not answer within collectTimeoutMs, was gone, or its registry threw.",
      failures,
    ),
  ];
}

/** Metrics whose name is the bus's own: an app metric with one is left out. */
export function isReserved(name: string): boolean {
  return name.startsWith('clusterbus_');
}

/**
 * The app's metrics of every process (by `slot` label value, in the map's order), as arrays for
 * `AggregatorRegistry.aggregate`: as they are
 * (`'aggregate'`: merged by each metric's aggregator), or with a `slot` label on every sample
 * (`'per-slot'`: each series stays; the aggregator becomes `sum`, which keeps distinct label sets
 * as they are, so that `omit` metrics are kept too). Metrics named `clusterbus_*` are left out.
 */
export function appMetrics(
  bySlot: ReadonlyMap<string, readonly MetricJSON[]>,
  mode: AppMetricsMode,
): MetricJSON[][] {
  const arrays: MetricJSON[][] = [];
  for (const [slot, metrics] of bySlot) {
    const own = metrics.filter((m) => !isReserved(m.name));
    if (mode === 'aggregate') {
      arrays.push(own);
      continue;
    }
    arrays.push(
      own.map((m) => ({
        ...m,
        aggregator: 'sum',
        values: m.values.map((v) => ({ ...v, labels: { ...v.labels, slot } })),
      })),
    );
  }
  return arrays;
}
