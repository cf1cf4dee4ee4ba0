/**
 * The shapes of the metrics extension: its options, the metrics in prom-client's JSON form (what
 * `registry.getMetricsAsJSON()` gives, and what `AggregatorRegistry.aggregate` takes), the answer
 * a worker gives to `$metrics.collect`, and the wire schemas both sides validate with.
 *
 * @module
 */
import { z } from 'zod';
import { DURATION_BUCKETS_SECONDS } from '../bus/observe.js';
import { BusError } from '../errors.js';
import { describeValue } from '../util/describe.js';
import { checkDurationMs } from '../util/duration.js';

/** The extension's name: its system names are `$metrics.<verb>`. */
export const METRICS = 'metrics';

/** @internal The extension's verbs: `$metrics.collect` (hub -> worker, a call). */
export const MetricsVerb = { collect: 'collect' } as const;

/** Default of {@link MetricsOptions.collectTimeoutMs}, in ms. @category Operations */
export const DEFAULT_COLLECT_TIMEOUT_MS = 2_000;

/** The `slot` label value of the primary's own metrics. */
export const PRIMARY_SLOT = 'primary';

/**
 * How the app's prom-client metrics of the workers are merged: `'aggregate'` (one series per
 * label set, merged across workers by each metric's `aggregator`, as prom-client's
 * `AggregatorRegistry` does), or `'per-slot'` (every worker's series kept, with a `slot` label).
 * @category Operations
 */
export type AppMetricsMode = 'aggregate' | 'per-slot';

/**
 * Options of the metrics (`startCluster({ metrics })`, `createMetricsScraper(app, options)`).
 * @category Operations
 */
export interface MetricsOptions {
  /**
   * How the app's metrics of the workers are merged: `'aggregate'` or `'per-slot'`
   * ({@link AppMetricsMode}). The bus's own metrics are always per slot.
   * @default 'aggregate'
   */
  readonly appMetrics?: AppMetricsMode;
  /**
   * Each worker has this many ms to answer a scrape. A worker that does not (or that is gone, or
   * whose registry throws) is left out of that scrape, and counted in
   * `clusterbus_scrape_failures_total{slot}`; the others are served.
   * @default 2_000
   */
  readonly collectTimeoutMs?: number;
  /**
   * The primary's own app metrics (a prom-client `Registry`, e.g. its default `register`),
   * merged with the workers' as one more process (`slot="primary"` in `'per-slot'` mode). Without
   * it, the app's metrics are the workers' only.
   * @default undefined
   */
  readonly primaryRegistry?: MetricsRegistry;
  /**
   * How the primary loads prom-client: e.g. `() => import('prom-client')` written in the app, so
   * that the app's copy is the one used. A loader that rejects with `ERR_MODULE_NOT_FOUND` is a
   * missing prom-client (`NOT_INSTALLED`, 501).
   * @default () => import('prom-client'), resolved from clusterbus's own location
   */
  readonly importPromClient?: () => Promise<unknown>;
}

/** @internal {@link MetricsOptions} with every default applied. */
export interface ResolvedMetricsOptions {
  readonly appMetrics: AppMetricsMode;
  readonly primaryRegistry: MetricsRegistry | undefined;
  readonly collectTimeoutMs: number;
  readonly importPromClient: () => Promise<unknown>;
}

/** @internal Checks and defaults metrics options. Throws `INVALID_ARGUMENT`. */
export function resolveMetricsOptions(
  options: MetricsOptions | undefined,
  base?: ResolvedMetricsOptions,
): ResolvedMetricsOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `metrics: expected an object, got ${describeValue(options)}`,
    );
  }
  const appMetrics = options?.appMetrics ?? base?.appMetrics ?? 'aggregate';
  if (appMetrics !== 'aggregate' && appMetrics !== 'per-slot') {
    throw new BusError(
      'INVALID_ARGUMENT',
      `metrics.appMetrics must be 'aggregate' or 'per-slot', got ${describeValue(appMetrics)}`,
    );
  }
  const importPromClient =
    options?.importPromClient ?? base?.importPromClient ?? (() => import('prom-client'));
  if (typeof importPromClient !== 'function') {
    throw new BusError('INVALID_ARGUMENT', 'metrics.importPromClient must be a function');
  }
  const primaryRegistry = options?.primaryRegistry ?? base?.primaryRegistry;
  if (primaryRegistry !== undefined && typeof primaryRegistry?.getMetricsAsJSON !== 'function') {
    throw new BusError(
      'INVALID_ARGUMENT',
      'metrics.primaryRegistry: expected a prom-client Registry (with getMetricsAsJSON())',
    );
  }
  return {
    appMetrics,
    primaryRegistry,
    collectTimeoutMs: checkDurationMs(
      options?.collectTimeoutMs ?? base?.collectTimeoutMs ?? DEFAULT_COLLECT_TIMEOUT_MS,
      'metrics.collectTimeoutMs',
    ),
    importPromClient,
  };
}

/**
 * A registry of metrics, as clusterbus reads it: prom-client's `Registry` (its default
 * `register`, or one of the app's).
 * @category Operations
 */
export interface MetricsRegistry {
  /** Every metric of the registry, with its values (prom-client's `getMetricsAsJSON`). */
  getMetricsAsJSON(): Promise<readonly unknown[]>;
}

/** The types of metric of Prometheus's text format, as prom-client names them. */
export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary';

/** How prom-client merges a metric across processes. */
export type Aggregator = 'omit' | 'sum' | 'first' | 'min' | 'max' | 'average';

/** One sample of a metric, as prom-client's JSON has it. */
export interface MetricValueJSON {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  /** The sample's own name, for the `_bucket`, `_sum` and `_count` of a histogram or summary. */
  readonly metricName?: string;
}

/** One metric with its samples, as prom-client's `getMetricsAsJSON()` gives it. */
export interface MetricJSON {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly aggregator: Aggregator;
  readonly values: readonly MetricValueJSON[];
}

// ---------------------------------------------------------------------------------------------
// Wire schemas: what the hub accepts of a worker's answer.

const count = z.number().nonnegative();
const counts = z.record(z.string(), z.record(z.string(), count));
/** Any number, NaN and infinities included (a gauge may be NaN). */
const anyNumber = z.custom<number>((v) => typeof v === 'number');

/** @internal A worker's bus counters, as `$metrics.collect` carries them. */
export const BusSnapshotSchema = z.object({
  calls: counts,
  durations: z.record(
    z.string(),
    z.object({
      buckets: z.array(count).length(DURATION_BUCKETS_SECONDS.length + 1),
      sum: z.number().nonnegative(),
      count,
    }),
  ),
  served: counts,
  inFlight: z.number(),
  published: z.record(z.string(), count),
  storeOps: counts,
});

/** @internal One app metric, as a worker's registry gave it. */
export const MetricSchema = z.object({
  name: z.string().min(1),
  help: z.string(),
  type: z.enum(['counter', 'gauge', 'histogram', 'summary']),
  aggregator: z.enum(['omit', 'sum', 'first', 'min', 'max', 'average']).default('sum'),
  values: z.array(
    z.object({
      value: anyNumber,
      labels: z.record(z.string(), z.union([z.string(), anyNumber])).default({}),
      metricName: z.string().optional(),
    }),
  ),
});

/** @internal A worker's answer to `$metrics.collect`. */
export const CollectAnswerSchema = z.object({
  /** The bus's counters. */
  bus: BusSnapshotSchema,
  /** The worker's outbound queue, in bytes. */
  queueBytes: z.number().nonnegative(),
  /** The app's metrics (prom-client's JSON), when its registry could be read. */
  app: z.array(MetricSchema).optional(),
  /** Why the app's registry could not be read, when it threw. */
  appError: z.string().optional(),
});

/** @internal A worker's answer to `$metrics.collect`, validated. */
export type CollectAnswer = z.infer<typeof CollectAnswerSchema>;
