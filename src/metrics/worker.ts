/**
 * The worker's side of the metrics extension: `bus.metrics` (`useRegistry`), and the answer to
 * the hub's `$metrics.collect`: the bus's counters, and the app's prom-client metrics
 * (`registry.getMetricsAsJSON()`) when prom-client is installed in the worker.
 *
 * @module
 */
import type { BusObserver, BusSnapshot } from '../bus/observe.js';
import { BusError, toBusError } from '../errors.js';
import { loadPromClient } from './prom.js';
import type { MetricsRegistry } from './types.js';

/** What a worker answers to `$metrics.collect` (the hub validates it: `CollectAnswerSchema`). */
export interface WorkerAnswer {
  readonly bus: BusSnapshot;
  readonly queueBytes: number;
  readonly app?: readonly unknown[];
  readonly appError?: string;
}

/** What the worker's metrics read of its bus. */
export interface WorkerCounters {
  readonly observer: BusObserver;
  readonly queuedBytes: number;
}

/**
 * A worker's metrics, found as `bus.metrics`: which prom-client registry the primary reads the
 * app's metrics from.
 * @category Operations
 */
export class WorkerMetrics {
  private registry: MetricsRegistry | undefined;

  /**
   * @internal Made by the metrics extension's worker side.
   * @param load - loads prom-client (its default `register` is read when no registry was given).
   */
  constructor(
    private readonly bus: WorkerCounters,
    private readonly load: () => Promise<unknown>,
  ) {}

  /**
   * Has the primary read the app's metrics of this worker from `registry` (a prom-client
   * `Registry`) instead of prom-client's default `register`; `undefined` goes back to the
   * default. Use it when the app's metrics are in a registry of its own, or when the app's copy
   * of prom-client is not the one clusterbus resolves.
   * @throws {@link BusError} `INVALID_ARGUMENT` (synchronously) for something that has no
   *   `getMetricsAsJSON()`.
   */
  useRegistry(registry: MetricsRegistry | undefined): void {
    if (
      registry !== undefined &&
      typeof (registry as Partial<MetricsRegistry> | null)?.getMetricsAsJSON !== 'function'
    ) {
      throw new BusError(
        'INVALID_ARGUMENT',
        'metrics.useRegistry: expected a prom-client Registry (with getMetricsAsJSON())',
      );
    }
    this.registry = registry;
  }

  /**
   * @internal This worker's answer to `$metrics.collect`: its counters, and its app metrics
   * (none when prom-client is not installed here and no registry was given; `appError` when the
   * registry threw).
   */
  async collect(): Promise<WorkerAnswer> {
    const answer = { bus: this.bus.observer.snapshot(), queueBytes: this.bus.queuedBytes };
    let registry = this.registry;
    if (registry === undefined) {
      try {
        registry = (await loadPromClient(this.load)).register;
      } catch (error) {
        if (error instanceof BusError && error.code === 'NOT_INSTALLED') return answer;
        return { ...answer, appError: toBusError(error, 'PROTOCOL').message };
      }
    }
    try {
      const app = await registry.getMetricsAsJSON();
      return { ...answer, app };
    } catch (error) {
      return { ...answer, appError: toBusError(error, 'REMOTE').message };
    }
  }
}
