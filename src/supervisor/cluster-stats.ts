/**
 * The periodic cluster summary (`logClusterStats`): one line on the primary's stdout every
 * interval, from `app.workers()` and `app.health()`: workers, active, healthy, restarts, the
 * workers' total rss and the worst event-loop p99. The timer is unref'd and stops with the cluster.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import type { ClusterApp } from './cluster.js';
import type { LogsMode } from './ops-options.js';

/** One summary, as {@link clusterStats} computes it. */
export interface ClusterStats {
  /** Slots (the worker count the cluster keeps). */
  readonly workers: number;
  /** Live workers that are ready (serving). */
  readonly active: number;
  /**
   * Ready workers that the health monitor sees as well: no ping missed at the moment, not over
   * the memory limit, and every app check of their last report passed.
   */
  readonly healthy: number;
  /** Workers forked into a slot that had one (a crash, an unhealthy worker, a rolling restart). */
  readonly restarts: number;
  /** The sum of the live workers' last reported rss, in bytes; undefined without reports. */
  readonly rssBytes: number | undefined;
  /** The worst last reported event-loop p99, in ms, and its slot; undefined without reports. */
  readonly worstEventLoopP99: { readonly ms: number; readonly slot: number } | undefined;
}

/** @internal Counts restarts from the app's events; computes and prints summaries. */
export class ClusterStatsLog<C extends Contract> {
  private restarts = 0;
  /** Slots that had a worker: another fork into one is a restart. */
  private readonly seen = new Set<number>();
  private timer: NodeJS.Timeout | undefined;

  /** Listens from now on: create it before the first fork. */
  constructor(
    private readonly app: ClusterApp<C>,
    private readonly mode: LogsMode,
    private readonly write: (line: string) => void = (line) => process.stdout.write(line),
  ) {
    app.on('worker:fork', ({ slot }) => {
      if (this.seen.has(slot)) this.restarts++;
      else this.seen.add(slot);
    });
    app.on('scale:done', ({ to }) => {
      for (const slot of this.seen) if (slot >= to) this.seen.delete(slot);
    });
    app.once('close', () => this.stop());
  }

  /** Prints a summary every `intervalMs` until the cluster closes. */
  start(intervalMs: number): void {
    this.stop();
    this.timer = setInterval(() => {
      if (!this.app.isClosing) this.write(`${this.format(this.stats())}\n`);
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The summary now. */
  stats(): ClusterStats {
    const health = this.app.health();
    const ready = health.workers.filter((w) => w.state === 'ready');
    const reports = health.workers.flatMap((w) => (w.report === undefined ? [] : [w.report]));
    let worst: { ms: number; slot: number } | undefined;
    for (const r of reports) {
      if (worst === undefined || r.eventLoopDelayMs.p99 > worst.ms) {
        worst = { ms: r.eventLoopDelayMs.p99, slot: r.slot };
      }
    }
    return {
      workers: this.app.slots.slots.filter((s) => !s.retired).length,
      active: ready.length,
      healthy: ready.filter(
        (w) => w.misses === 0 && w.overMemory === 0 && w.report?.healthy !== false,
      ).length,
      restarts: this.restarts,
      rssBytes: reports.length === 0 ? undefined : reports.reduce((n, r) => n + r.rssBytes, 0),
      worstEventLoopP99: worst,
    };
  }

  /** One line: JSON with `logs: 'json'` (what is unknown as `null`), else words. */
  format(s: ClusterStats): string {
    if (this.mode === 'json') {
      return JSON.stringify({
        time: new Date().toISOString(),
        type: 'cluster-stats',
        ...s,
        rssBytes: s.rssBytes ?? null,
        worstEventLoopP99: s.worstEventLoopP99 ?? null,
      });
    }
    const rss = s.rssBytes === undefined ? 'n/a' : `${(s.rssBytes / 2 ** 20).toFixed(1)} MiB`;
    const p99 =
      s.worstEventLoopP99 === undefined
        ? 'n/a'
        : `${s.worstEventLoopP99.ms.toFixed(1)} ms (slot ${s.worstEventLoopP99.slot})`;
    return `[clusterbus] workers ${s.workers} · active ${s.active} · healthy ${s.healthy} · restarts ${s.restarts} · rss ${rss} · worst event-loop p99 ${p99}`;
  }
}
