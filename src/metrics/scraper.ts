/**
 * The provider an HTTP endpoint serves `GET /metrics` with: each scrape of the cluster as a
 * status, a content type and a body, never a rejection.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import { toBusError } from '../errors.js';
import type { PrimaryBus } from '../primary-bus.js';
import { metricsOf } from './extension.js';
import { type MetricsOptions, resolveMetricsOptions } from './types.js';

/** One scrape, as an HTTP response. @category Operations */
export interface MetricsScrape {
  /**
   * `200` (the metrics), `501` (prom-client is not installed in the primary), `503` (the
   * cluster or the scraper is closed), `500` (anything else; the body says what).
   */
  readonly status: number;
  /** prom-client's `text/plain; version=0.0.4; charset=utf-8` for 200; `text/plain; charset=utf-8` otherwise. */
  readonly contentType: string;
  /** Prometheus's text format for 200; a one-line message otherwise. */
  readonly body: string;
}

/** What {@link createMetricsScraper} returns. @category Operations */
export interface MetricsScraper {
  /** Scrapes the cluster. Never rejects: every outcome is a {@link MetricsScrape}. */
  scrape(): Promise<MetricsScrape>;
  /** Ends the scraper: every later scrape answers 503. Idempotent. */
  close(): void;
}

const TEXT = 'text/plain; charset=utf-8';

/**
 * A scraper of `app`'s metrics (the `ClusterApp` that `startCluster` resolved with) for an HTTP
 * endpoint (`GET /metrics`), with the cluster's `metrics` options, or `options` over them. Each
 * scrape asks every ready worker, each within `collectTimeoutMs`; a worker that does not answer
 * is left out and counted in `clusterbus_scrape_failures_total{slot}`. See docs/metrics.md.
 *
 * @throws a `BusError` `INVALID_ARGUMENT` (synchronously) for a bad option.
 * @category Operations
 */
export function createMetricsScraper<C extends Contract>(
  app: { readonly bus: PrimaryBus<C> },
  options?: MetricsOptions,
): MetricsScraper {
  if (options !== undefined) resolveMetricsOptions(options); // checked now, not at each scrape
  const hub = metricsOf(app.bus);
  let closed = false;
  return {
    async scrape(): Promise<MetricsScrape> {
      if (closed)
        return { status: 503, contentType: TEXT, body: 'the metrics scraper is closed\n' };
      try {
        const { text, contentType } = await hub.render(options);
        return { status: 200, contentType, body: text };
      } catch (error) {
        const e = toBusError(error, 'PROTOCOL');
        const status = e.code === 'NOT_INSTALLED' ? 501 : e.code === 'CLOSED' ? 503 : 500;
        return { status, contentType: TEXT, body: `${e.message}\n` };
      }
    },
    close() {
      closed = true;
    },
  };
}
