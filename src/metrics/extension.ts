/**
 * The metrics extension: the hub scrapes every ready worker over the bus and renders the
 * cluster's metrics (the bus's own, by slot, and the app's prom-client metrics) through
 * prom-client, an optional peer dependency loaded on first use. One verb, `$metrics.collect`
 * (hub -> worker, a call). See docs/metrics.md.
 *
 * @module
 */
import type { Extension } from '../core/extension.js';
import { BusError } from '../errors.js';
import { type MetricsCluster, MetricsHub, type PrimaryCounters } from './hub.js';
import { METRICS, MetricsVerb, type ResolvedMetricsOptions } from './types.js';
import { type WorkerCounters, WorkerMetrics } from './worker.js';

export type { MetricsHub, RenderedMetrics } from './hub.js';
export type { WorkerMetrics } from './worker.js';

/**
 * @internal The hub's side: the {@link MetricsHub} (`render`, `text`), closed with the bus.
 * @param cluster - the running cluster: its workers, their health, its lifecycle events.
 * @param primary - the primary's bus: its counters and outbound queues.
 */
export function metricsHub(
  options: ResolvedMetricsOptions,
  cluster: MetricsCluster,
  primary: PrimaryCounters,
): Extension<MetricsHub> {
  return {
    name: METRICS,
    install(ctx) {
      const hub = new MetricsHub(ctx, options, cluster, primary);
      return { api: hub, close: () => hub.close() };
    },
  };
}

/**
 * @internal The worker's side: `bus.metrics` ({@link WorkerMetrics}) and the `$metrics.collect`
 * handler (the hub's only).
 * @param load - loads prom-client in the worker. @default () => import('prom-client')
 */
export function metricsWorker(
  bus: WorkerCounters,
  load: () => Promise<unknown> = () => import('prom-client'),
): Extension<WorkerMetrics> {
  return {
    name: METRICS,
    install(ctx) {
      const metrics = new WorkerMetrics(bus, load);
      ctx.handle(MetricsVerb.collect, () => metrics.collect());
      return { api: metrics };
    },
  };
}

/**
 * @internal The metrics hub installed on `bus` (the primary's), or one that refuses every scrape
 * with `INVALID_ARGUMENT` when the bus has none (a bus made without `startCluster`).
 */
export function metricsOf(bus: {
  extensionApi(name: string): unknown;
}): Pick<MetricsHub, 'render' | 'text'> {
  const hub = bus.extensionApi(METRICS);
  if (hub instanceof MetricsHub) return hub;
  const refuse = () =>
    Promise.reject(
      new BusError(
        'INVALID_ARGUMENT',
        'metrics: this bus has no metrics hub (made without startCluster)',
      ),
    );
  return { render: refuse, text: refuse };
}
