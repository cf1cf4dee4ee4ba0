/**
 * The hub's side of the metrics extension: a scrape asks every ready worker for its counters and
 * its app metrics (`$metrics.collect`), each with its own timeout, and renders what came back,
 * with the primary's own counters and the supervisor's view, through prom-client. A worker that
 * is slow, gone or failing is left out of that scrape and counted in
 * `clusterbus_scrape_failures_total{slot}`: the scrape is partial, never failed, unlike
 * prom-client's `AggregatorRegistry.clusterMetrics()`, which rejects when one worker is slow.
 *
 * @module
 */
import type { EventEmitter } from 'eventemitter3';
import type { BusObserver } from '../bus/observe.js';
import type { ExtensionContext } from '../core/extension.js';
import { BusError } from '../errors.js';
import type { ClusterHealth } from '../health/types.js';
import type { ClusterEvents, WorkerInfo } from '../supervisor/events.js';
import { loadPromClient, type PromClient } from './prom.js';
import {
  appMetrics,
  busMetrics,
  type ClusterView,
  type RestartReason,
  type SlotCounters,
} from './render.js';
import {
  type CollectAnswer,
  CollectAnswerSchema,
  type MetricJSON,
  MetricSchema,
  type MetricsOptions,
  MetricsVerb,
  PRIMARY_SLOT,
  type ResolvedMetricsOptions,
  resolveMetricsOptions,
} from './types.js';

/** What the hub reads of the cluster it runs in (the `ClusterApp`). */
export interface MetricsCluster extends EventEmitter<ClusterEvents, unknown> {
  /** The live workers. */
  workers(): WorkerInfo[];
  /** Every live worker's last health report. */
  health(): ClusterHealth;
}

/** What the hub reads of the primary's own bus. */
export interface PrimaryCounters {
  readonly observer: BusObserver;
  readonly queuedBytes: number;
}

/** One scrape, rendered. */
export interface RenderedMetrics {
  /** Prometheus's text format. */
  readonly text: string;
  /** Its content type, as prom-client gives it (`text/plain; version=0.0.4; charset=utf-8`). */
  readonly contentType: string;
}

/** The hub's metrics: scrapes, and the counters it keeps between them. */
export class MetricsHub {
  private readonly restarts = new Map<number, Map<RestartReason, number>>();
  private readonly failures = new Map<number, number>();
  /** Scrapes whose `primaryRegistry` threw; undefined until one is read. */
  private primaryFailures: number | undefined;
  private prom: Promise<PromClient> | undefined;
  private closed = false;

  /** @internal Made by the metrics extension's hub side. */
  constructor(
    private readonly ctx: ExtensionContext,
    readonly options: ResolvedMetricsOptions,
    private readonly cluster: MetricsCluster,
    private readonly primary: PrimaryCounters,
  ) {
    const count = (slot: number, reason: RestartReason) => {
      const bySlot = this.restarts.get(slot) ?? new Map<RestartReason, number>();
      bySlot.set(reason, (bySlot.get(reason) ?? 0) + 1);
      this.restarts.set(slot, bySlot);
    };
    cluster.on('worker:replace', (e) => count(e.slot, e.reason));
    // A crash is restarted at once (replacedBy) or after a backoff (worker:backoff).
    cluster.on('worker:exit', (e) => {
      if (!e.planned && e.replacedBy !== undefined) count(e.slot, 'crash');
    });
    cluster.on('worker:backoff', (e) => count(e.slot, 'crash'));
  }

  /**
   * Scrapes the cluster and renders it as Prometheus text (see docs/metrics.md).
   * @param overrides - this scrape's `appMetrics` and `collectTimeoutMs`, over the cluster's.
   * @throws never synchronously; rejects with {@link BusError} `NOT_INSTALLED` when prom-client
   *   is not installed in the primary, `CLOSED` once the bus is closed, `INVALID_ARGUMENT` for a
   *   bad override.
   */
  async render(overrides?: MetricsOptions): Promise<RenderedMetrics> {
    const options =
      overrides === undefined ? this.options : resolveMetricsOptions(overrides, this.options);
    if (this.closed) throw new BusError('CLOSED', 'metrics: the cluster is closed');
    const prom = await this.load(options);
    const answers = await this.collect(options.collectTimeoutMs);
    const processes: SlotCounters[] = [
      {
        slot: PRIMARY_SLOT,
        bus: this.primary.observer.snapshot(),
        queueBytes: this.primary.queuedBytes,
      },
    ];
    const app = new Map<string, MetricJSON[]>();
    const own = await this.primaryApp(options);
    if (own !== undefined) app.set(PRIMARY_SLOT, own);
    for (const [slot, answer] of [...answers].sort((a, b) => a[0] - b[0])) {
      processes.push({ slot: String(slot), bus: answer.bus, queueBytes: answer.queueBytes });
      if (answer.app !== undefined) app.set(String(slot), answer.app);
    }
    const registry = prom.AggregatorRegistry.aggregate([
      busMetrics(processes, this.view()),
      ...appMetrics(app, options.appMetrics),
    ]);
    return { text: await registry.metrics(), contentType: registry.contentType };
  }

  /**
   * @internal The bus counters of the primary (`'primary'`) and of each slot's ready worker, by
   * `slot` label value, without prom-client (for a stats endpoint). A worker that does not answer
   * within `collectTimeoutMs` is missing, and counted as in a scrape.
   * @throws never synchronously; rejects with `CLOSED` once the bus is closed.
   */
  async counters(): Promise<Map<string, SlotCounters>> {
    if (this.closed) throw new BusError('CLOSED', 'metrics: the cluster is closed');
    const answers = await this.collect(this.options.collectTimeoutMs);
    const bus = this.primary.observer.snapshot();
    const out = new Map<string, SlotCounters>([
      [PRIMARY_SLOT, { slot: PRIMARY_SLOT, bus, queueBytes: this.primary.queuedBytes }],
    ]);
    for (const [slot, a] of [...answers].sort((x, y) => x[0] - y[0])) {
      out.set(String(slot), { slot: String(slot), bus: a.bus, queueBytes: a.queueBytes });
    }
    return out;
  }

  /** {@link render}'s text. */
  async text(overrides?: MetricsOptions): Promise<string> {
    return (await this.render(overrides)).text;
  }

  /** The primary's own app metrics, from `primaryRegistry`; a throw or a bad one is counted. */
  private async primaryApp(options: ResolvedMetricsOptions): Promise<MetricJSON[] | undefined> {
    const registry = options.primaryRegistry;
    if (registry === undefined) return undefined;
    this.primaryFailures ??= 0;
    try {
      return MetricSchema.array().parse(await registry.getMetricsAsJSON());
    } catch {
      this.primaryFailures++;
      return undefined;
    }
  }

  private load(options: ResolvedMetricsOptions): Promise<PromClient> {
    if (options.importPromClient !== this.options.importPromClient) {
      return loadPromClient(options.importPromClient);
    }
    // Kept once loaded; a failed load is tried again on the next scrape.
    this.prom ??= loadPromClient(options.importPromClient).catch((error: unknown) => {
      this.prom = undefined;
      throw error;
    });
    return this.prom;
  }

  /**
   * Asks the newest ready worker of every slot for its counters and app metrics, each within
   * `timeoutMs`. Returns the answers by slot; a worker that fails is counted, and left out.
   */
  private async collect(timeoutMs: number): Promise<Map<number, CollectAnswer>> {
    const bySlot = new Map<number, WorkerInfo>();
    for (const w of this.cluster.workers()) {
      if (w.state !== 'ready' || !w.connected) continue;
      const seen = bySlot.get(w.slot);
      if (seen === undefined || w.id > seen.id) bySlot.set(w.slot, w);
    }
    const answers = new Map<number, CollectAnswer>();
    await Promise.all(
      [...bySlot.values()].map(async (w) => {
        if (!this.failures.has(w.slot)) this.failures.set(w.slot, 0);
        let raw: unknown;
        try {
          raw = await this.ctx.call(w.id, MetricsVerb.collect, undefined, { timeoutMs });
        } catch {
          this.failed(w.slot); // slow (TIMEOUT), gone (TARGET_EXITED), or closing
          return;
        }
        const answer = CollectAnswerSchema.safeParse(raw);
        if (!answer.success) {
          this.failed(w.slot);
          this.ctx.report(
            new BusError(
              'PROTOCOL',
              `a malformed metrics answer from worker ${w.id} (slot ${w.slot})`,
            ),
          );
          return;
        }
        answers.set(w.slot, answer.data);
        if (answer.data.appError !== undefined) this.failed(w.slot);
      }),
    );
    return answers;
  }

  private failed(slot: number): void {
    this.failures.set(slot, (this.failures.get(slot) ?? 0) + 1);
  }

  /** The supervisor's and the health monitor's view, by slot. */
  private view(): ClusterView {
    const workers = this.cluster.workers();
    const serving = new Map<number, ClusterHealth['workers'][number]>();
    for (const w of this.cluster.health().workers) {
      if (w.state !== 'ready' || w.report === undefined) continue;
      const seen = serving.get(w.slot);
      if (seen === undefined || w.workerId > seen.workerId) serving.set(w.slot, w);
    }
    return {
      workers,
      health: [...serving.values()].map((w) => ({
        slot: w.slot,
        rssBytes: w.report!.rssBytes,
        eventLoopDelayMs: w.report!.eventLoopDelayMs,
      })),
      restarts: this.restarts,
      scrapeFailures: this.failures,
      primaryScrapeFailures: this.primaryFailures,
    };
  }

  /** Refuses every later scrape with `CLOSED`. */
  close(): void {
    this.closed = true;
  }
}
