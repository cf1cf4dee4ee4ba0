/** The metrics' types: options, the scraper's answer, and prom-client registries accepted as they are. */
import { Registry, register } from 'prom-client';
import { describe, expectTypeOf, it } from 'vitest';
import {
  type ClusterApp,
  createMetricsScraper,
  defineContract,
  type MetricsOptions,
  type MetricsScrape,
  type StartClusterOptions,
  type WorkerBus,
} from '../../src/index.js';

const contract = defineContract({ methods: { ping: {} } });
type C = typeof contract;
declare const app: ClusterApp<C>;
declare const worker: WorkerBus<C>;

describe('metrics types', () => {
  it('app.metrics() resolves with the text; a scraper answers status, content type and body', () => {
    expectTypeOf(app.metrics()).toEqualTypeOf<Promise<string>>();
    const scraper = createMetricsScraper(app, { appMetrics: 'per-slot' });
    expectTypeOf(scraper.scrape()).toEqualTypeOf<Promise<MetricsScrape>>();
    expectTypeOf<MetricsScrape>().toEqualTypeOf<{
      readonly status: number;
      readonly contentType: string;
      readonly body: string;
    }>();
  });

  it("takes prom-client's registries as they are, in a worker and for the primary", () => {
    worker.metrics.useRegistry(new Registry());
    worker.metrics.useRegistry(register);
    worker.metrics.useRegistry(undefined);
    const options: StartClusterOptions<C> = {
      contract,
      metrics: { primaryRegistry: register, collectTimeoutMs: 1_000 },
    };
    expectTypeOf(options.metrics).toEqualTypeOf<MetricsOptions | undefined>();
  });

  it('refuses an unknown aggregation mode', () => {
    // @ts-expect-error: 'aggregate' or 'per-slot'
    const bad: MetricsOptions = { appMetrics: 'sum' };
    expectTypeOf(bad).toEqualTypeOf<MetricsOptions>();
  });
});
