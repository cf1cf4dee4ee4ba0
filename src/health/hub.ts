/**
 * The hub's side of the health extension: it pings every ready worker on an interval (a
 * `$health.ping` one-way message), counts the pings not answered in time, and tells the
 * supervisor when a worker misses too many in a row or stays over its memory limit.
 *
 * Pings are point-to-point one-way messages, not calls: a ping in flight is no pending call, and
 * the monitor owns its deadlines (one unref'd timer per watched worker).
 *
 * @module
 */
import type { ExtensionContext } from '../core/extension.js';
import { BusError } from '../errors.js';
import { checkCount } from '../util/count.js';
import { checkDurationMs } from '../util/duration.js';
import {
  type HealthOptions,
  type HealthReport,
  HealthVerb,
  type Ping,
  ReportMessageSchema,
  type UnhealthyReason,
} from './types.js';

/** {@link HealthOptions} with every default applied. */
export interface ResolvedHealthOptions {
  readonly intervalMs: number;
  readonly misses: number;
  readonly maxMemoryBytes: number | undefined;
  readonly memorySamples: number;
  readonly checkTimeoutMs: number;
}

/** Default ping interval, in ms. */
export const DEFAULT_HEALTH_INTERVAL_MS = 5_000;
/** Default consecutive misses before replacement. */
export const DEFAULT_HEALTH_MISSES = 3;
/** Default consecutive reports over `maxMemoryBytes` before replacement. */
export const DEFAULT_MEMORY_SAMPLES = 2;

/** Checks and defaults health options. Throws `INVALID_ARGUMENT`. */
export function resolveHealthOptions(options: HealthOptions = {}): ResolvedHealthOptions {
  const intervalMs = checkDurationMs(
    options.intervalMs ?? DEFAULT_HEALTH_INTERVAL_MS,
    'health.intervalMs',
  );
  const misses = checkCount(options.misses ?? DEFAULT_HEALTH_MISSES, 'health.misses');
  const memorySamples = checkCount(
    options.memorySamples ?? DEFAULT_MEMORY_SAMPLES,
    'health.memorySamples',
  );
  const maxMemoryBytes =
    options.maxMemoryBytes === undefined
      ? undefined
      : checkCount(options.maxMemoryBytes, 'health.maxMemoryBytes');
  const checkTimeoutMs = checkDurationMs(
    options.checkTimeoutMs ?? Math.max(1, Math.floor(intervalMs / 2)),
    'health.checkTimeoutMs',
  );
  return { intervalMs, misses, maxMemoryBytes, memorySamples, checkTimeoutMs };
}

/** What the monitor tells its owner. */
export interface MonitorHooks {
  /** A worker missed too many pings or stayed over its memory limit. It is no longer watched. */
  unhealthy(workerId: number, reason: UnhealthyReason, detail: string): void;
  /** A report arrived (on time or late). */
  report(report: HealthReport): void;
  /** A malformed report arrived. */
  error(error: BusError): void;
}

/** The monitor's view of one worker. */
export interface MonitorView {
  readonly misses: number;
  readonly overMemory: number;
  readonly lastSeenAt: number | undefined;
  readonly report: HealthReport | undefined;
}

interface Watched {
  readonly workerId: number;
  /** Sequence number of the last ping sent. */
  seq: number;
  /** Whether the last ping is still unanswered. */
  outstanding: boolean;
  misses: number;
  overMemory: number;
  lastSeenAt: number | undefined;
  report: HealthReport | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** The hub's health monitor, found as the health extension's hub API. */
export class HealthMonitor {
  private readonly watched = new Map<number, Watched>();
  /** Last view of workers no longer watched (draining), until they are forgotten. */
  private readonly retired = new Map<number, MonitorView>();
  private readonly unsubscribe: () => void;
  private stopped = false;
  private nextSeq = 1;

  /** @internal Made by the health extension's hub side. */
  constructor(
    private readonly ctx: ExtensionContext,
    readonly options: ResolvedHealthOptions,
    private readonly hooks: MonitorHooks,
  ) {
    this.unsubscribe = ctx.on(HealthVerb.report, (payload, source) =>
      this.onReport(payload, source),
    );
  }

  /** Whether the monitor is running. */
  get running(): boolean {
    return !this.stopped;
  }

  /** Starts pinging a ready worker: now, then every `intervalMs`. */
  watch(workerId: number): void {
    if (this.stopped || this.watched.has(workerId)) return;
    this.retired.delete(workerId);
    const w: Watched = {
      workerId,
      seq: 0,
      outstanding: false,
      misses: 0,
      overMemory: 0,
      lastSeenAt: undefined,
      report: undefined,
      timer: undefined,
    };
    this.watched.set(workerId, w);
    this.tick(w);
  }

  /** Stops pinging a worker (draining or gone); its last view is kept until {@link forget}. */
  unwatch(workerId: number): void {
    const w = this.watched.get(workerId);
    if (w === undefined) return;
    clearTimeout(w.timer);
    this.watched.delete(workerId);
    this.retired.set(workerId, this.viewOf(w));
  }

  /** Forgets a worker that exited. */
  forget(workerId: number): void {
    this.unwatch(workerId);
    this.retired.delete(workerId);
  }

  /** The monitor's view of a worker, undefined if it never watched it. */
  view(workerId: number): MonitorView | undefined {
    const w = this.watched.get(workerId);
    return w === undefined ? this.retired.get(workerId) : this.viewOf(w);
  }

  private viewOf(w: Watched): MonitorView {
    return {
      misses: w.misses,
      overMemory: w.overMemory,
      lastSeenAt: w.lastSeenAt,
      report: w.report,
    };
  }

  /** One interval: count the previous ping as missed if unanswered, then ping again. */
  private tick(w: Watched): void {
    w.timer = undefined;
    if (this.stopped || this.watched.get(w.workerId) !== w) return;
    if (w.outstanding) {
      w.misses++;
      if (w.misses >= this.options.misses) {
        const seen =
          w.lastSeenAt === undefined
            ? 'never answered'
            : `last seen ${Date.now() - w.lastSeenAt} ms ago`;
        this.unwatch(w.workerId);
        this.hooks.unhealthy(
          w.workerId,
          'missed-pings',
          `missed ${w.misses} consecutive pings (interval ${this.options.intervalMs} ms); ${seen}`,
        );
        return;
      }
    }
    w.seq = this.nextSeq++;
    const ping: Ping = { seq: w.seq, checkTimeoutMs: this.options.checkTimeoutMs };
    // A worker that cannot be reached (bus closed) cannot answer: the ping counts as sent.
    this.ctx.send(w.workerId, HealthVerb.ping, ping);
    w.outstanding = true;
    w.timer = setTimeout(() => this.tick(w), this.options.intervalMs);
    w.timer.unref();
  }

  private onReport(payload: unknown, source: unknown): void {
    const parsed = ReportMessageSchema.safeParse(payload);
    if (!parsed.success || typeof source !== 'number') {
      this.hooks.error(
        new BusError('PROTOCOL', `a malformed health report from ${String(source)}`),
      );
      return;
    }
    const w = this.watched.get(source);
    if (w === undefined) return; // draining or gone: its verdict is in
    const { seq, report } = parsed.data;
    w.report = report;
    w.lastSeenAt = Date.now();
    // Only the answer to the latest ping, before the next interval, clears the misses.
    if (seq === w.seq && w.outstanding) {
      w.outstanding = false;
      w.misses = 0;
    }
    this.hooks.report(report);
    const max = this.options.maxMemoryBytes;
    if (max === undefined) return;
    w.overMemory = report.rssBytes > max ? w.overMemory + 1 : 0;
    if (w.overMemory >= this.options.memorySamples) {
      this.unwatch(w.workerId);
      this.hooks.unhealthy(
        w.workerId,
        'memory',
        `rss ${mb(report.rssBytes)} over maxMemoryBytes ${mb(max)} in ${w.overMemory} consecutive reports`,
      );
    }
  }

  /** Stops every timer and the subscription. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const w of this.watched.values()) clearTimeout(w.timer);
    for (const w of [...this.watched.values()]) this.retired.set(w.workerId, this.viewOf(w));
    this.watched.clear();
    this.unsubscribe();
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
