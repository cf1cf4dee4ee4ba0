/**
 * Loading prom-client, an optional peer dependency: with a dynamic `import()`, on first use, so
 * that nothing else depends on it being installed. What clusterbus uses of it: `Registry` (its
 * default `register` in a worker), and `AggregatorRegistry.aggregate` with a registry's text
 * rendering in the primary.
 *
 * @module
 */
import { BusError } from '../errors.js';
import type { MetricJSON, MetricsRegistry } from './types.js';

/** What clusterbus needs of prom-client. */
export interface PromClient {
  /** prom-client's default registry. */
  readonly register: MetricsRegistry;
  readonly AggregatorRegistry: {
    /** Merges arrays of `getMetricsAsJSON()` results by each metric's `aggregator`. */
    aggregate(metrics: readonly (readonly MetricJSON[])[]): RenderedRegistry;
  };
}

/** The registry `aggregate` returns: rendered as Prometheus text. */
export interface RenderedRegistry {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** The message of a missing prom-client: what to do about it. */
export const PROM_CLIENT_MISSING =
  'prom-client is not installed: the metrics need it (npm install prom-client); nothing else does';

/**
 * Loads prom-client with `load`.
 * @throws never synchronously; rejects with {@link BusError} `NOT_INSTALLED` when the module
 *   cannot be found (`ERR_MODULE_NOT_FOUND`), or does not look like prom-client; `PROTOCOL`
 *   (with the cause) when it fails to load otherwise.
 */
export async function loadPromClient(load: () => Promise<unknown>): Promise<PromClient> {
  let loaded: unknown;
  try {
    loaded = await load();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new BusError('NOT_INSTALLED', PROM_CLIENT_MISSING, {
        cause: error,
        data: { module: 'prom-client' },
      });
    }
    throw new BusError('PROTOCOL', 'prom-client could not be loaded', { cause: error });
  }
  const mod = loaded as Partial<PromClient> & { default?: Partial<PromClient> };
  const client = typeof mod.AggregatorRegistry?.aggregate === 'function' ? mod : mod.default;
  if (
    typeof client?.AggregatorRegistry?.aggregate !== 'function' ||
    typeof client.register?.getMetricsAsJSON !== 'function'
  ) {
    throw new BusError(
      'NOT_INSTALLED',
      'the module loaded as prom-client has no AggregatorRegistry.aggregate or register: install prom-client 15',
      { data: { module: 'prom-client' } },
    );
  }
  return client as PromClient;
}
