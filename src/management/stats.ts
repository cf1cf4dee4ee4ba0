/**
 * What `GET /health` and `GET /stats` report, built from the app's own state (its slots, the
 * health monitor's latest reports) and from counters fed by its lifecycle events (forks, crashes,
 * restarts, workers declared unhealthy, the requests the workers count).
 *
 * @module
 */
import type { Contract } from '../contract.js';
import type { HealthReport } from '../health/types.js';
import type { ClusterApp, ClusterEvents } from '../supervisor/cluster.js';
import type { Operations, ScaleBounds } from './operations.js';
import type { HealthBody, StatsBody, WorkerStats } from './types.js';

interface ReportSample {
  readonly at: number;
  readonly callsServed: number;
}

/** @internal Counts what the app's events tell, and builds the bodies of `/health` and `/stats`. */
export class ClusterStats {
  private spawned = 0;
  private crashes = 0;
  private restarts = 0;
  /** Forks per slot index: the slot's restarts are its forks after the first. */
  private readonly forks = new Map<number, number>();
  /** Workers the health monitor declared unhealthy, until they exit. */
  private readonly declared = new Set<number>();
  /** The requests each live worker last reported. */
  private readonly requests = new Map<number, number>();
  /** Requests reported by workers that have exited. */
  private exitedRequests = 0;
  private counting = false;
  /** The two last reports' samples per worker, for calls per second. */
  private readonly samples = new Map<number, [ReportSample | undefined, ReportSample]>();
  private readonly off: (() => void)[] = [];

  constructor(
    private readonly app: ClusterApp<Contract>,
    private readonly bounds: () => ScaleBounds,
    private readonly operations: Operations,
  ) {
    this.listen('worker:fork', ({ slot }) => {
      this.spawned++;
      const n = (this.forks.get(slot) ?? 0) + 1;
      this.forks.set(slot, n);
      if (n > 1) this.restarts++;
    });
    this.listen('worker:exit', ({ workerId, planned }) => {
      if (!planned) this.crashes++;
      this.declared.delete(workerId);
      this.samples.delete(workerId);
      this.exitedRequests += this.requests.get(workerId) ?? 0;
      this.requests.delete(workerId);
    });
    this.listen('worker:unhealthy', ({ workerId }) => this.declared.add(workerId));
    this.listen('worker:health', (report) => this.onReport(report));
    // A slot removed by a scale-down and added again later is a new slot, not a restart.
    this.listen('scale:done', ({ to }) => {
      for (const slot of [...this.forks.keys()]) if (slot >= to) this.forks.delete(slot);
    });
  }

  private listen<E extends keyof ClusterEvents>(event: E, listener: ClusterEvents[E]): void {
    this.app.on(event, listener as never);
    this.off.push(() => this.app.off(event, listener as never));
  }

  private onReport(report: HealthReport): void {
    const previous = this.samples.get(report.workerId)?.[1];
    this.samples.set(report.workerId, [
      previous,
      { at: report.at, callsServed: report.callsServed },
    ]);
    if (report.requests !== undefined) {
      this.counting = true;
      this.requests.set(report.workerId, report.requests);
    }
  }

  /** Stops listening. */
  close(): void {
    for (const off of this.off.splice(0)) off();
  }

  /** Whether a worker is ready and not declared unhealthy. */
  private isHealthy(workerId: number, state: string): boolean {
    return state === 'ready' && !this.declared.has(workerId);
  }

  /** The body of `GET /health` (200 when `status` is `'ok'`). */
  health(): HealthBody {
    const problems: { slot: number; reason: string }[] = [];
    const slots = this.app.slots.slots.filter((s) => !s.retired);
    for (const slot of slots) {
      const w = slot.current;
      let reason: string | undefined;
      if (w === undefined) reason = slot.stopped ? 'restart limit' : 'no worker';
      else if (this.declared.has(w.id)) reason = `worker ${w.id} declared unhealthy`;
      else if (w.state !== 'ready') reason = `worker ${w.id} ${w.state}`;
      if (reason !== undefined) problems.push({ slot: slot.index, reason });
    }
    const closing = this.app.isClosing;
    return {
      status: closing ? 'closing' : problems.length === 0 && slots.length > 0 ? 'ok' : 'unhealthy',
      slots: slots.length,
      healthy: slots.length - problems.length,
      problems,
    };
  }

  /** The body of `GET /stats`. */
  stats(): StatsBody {
    const health = this.app.health();
    const views = new Map(health.workers.map((w) => [w.workerId, w]));
    const now = performance.now();
    const workers: WorkerStats[] = [...this.app.slots.records.values()]
      .sort((a, b) => a.slot.index - b.slot.index || a.id - b.id)
      .map((r) => {
        const view = views.get(r.id);
        const report = view?.report;
        const [before, last] = this.samples.get(r.id) ?? [undefined, undefined];
        const seconds =
          before === undefined || last === undefined ? 0 : (last.at - before.at) / 1000;
        return {
          slot: r.slot.index,
          workerId: r.id,
          pid: r.worker.process.pid ?? null,
          state: r.state,
          healthy: this.isHealthy(r.id, r.state),
          uptimeMs: Math.round(now - r.forkedAt),
          restarts: Math.max(0, (this.forks.get(r.slot.index) ?? 1) - 1),
          rssBytes: report?.rssBytes ?? null,
          heapUsedBytes: report?.heapUsedBytes ?? null,
          eventLoopDelayMs:
            report === undefined
              ? null
              : {
                  p50: round2(report.eventLoopDelayMs.p50),
                  p99: round2(report.eventLoopDelayMs.p99),
                },
          inFlightCalls: report?.inFlightCalls ?? null,
          callsServed: report?.callsServed ?? null,
          callsPerSecond:
            seconds > 0 ? round2((last!.callsServed - before!.callsServed) / seconds) : null,
          callDurationMs: callDurations(report),
          requests: this.requests.get(r.id) ?? null,
          lastReportAt: view?.lastSeenAt ?? null,
        };
      });
    const bounds = this.bounds();
    const body = this.health();
    let live = 0;
    for (const n of this.requests.values()) live += n;
    return {
      at: Date.now(),
      primary: {
        pid: process.pid,
        uptimeMs: Math.round(process.uptime() * 1000),
        requests: this.counting ? this.exitedRequests + live : null,
        restarts: this.restarts,
        crashes: this.crashes,
        workersSpawned: this.spawned,
      },
      cluster: {
        workers: body.slots,
        active: workers.filter((w) => w.state === 'ready').length,
        min: bounds.min,
        max: bounds.max,
        healthy: body.healthy,
      },
      workers,
      restart: this.operations.lastRestart(),
      scale: this.operations.lastScale(),
    };
  }
}

/** A report's serve times, rounded to 0.01 ms; null without one. */
function callDurations(report: HealthReport | undefined): WorkerStats['callDurationMs'] {
  const d = report?.callDurationMs;
  if (d === undefined || d === null) return null;
  return { p50: round2(d.p50), p99: round2(d.p99), max: round2(d.max), count: d.count };
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
