/**
 * The worker's side of the health extension: `bus.health.addCheck(name, fn)`, and the report it
 * answers each ping with (memory, event-loop delay and utilization, in-flight calls, the time
 * taken to serve requests, uptime, the app's checks).
 *
 * @module
 */
import {
  type EventLoopUtilization,
  type IntervalHistogram,
  monitorEventLoopDelay,
  performance,
} from 'node:perf_hooks';
import { BusError } from '../errors.js';
import { poolStats } from '../threads/registry.js';
import type { CallDurations, HealthCheckResult, HealthReport } from './types.js';

/**
 * An app health check: resolves (with an optional JSON value, e.g. `{ latencyMs: 3 }`) when
 * healthy; throws or rejects when not.
 * @category Health
 */
export type HealthCheck = () => unknown;

/** Sampling resolution of the event-loop delay histogram, in ms. */
const RESOLUTION_MS = 10;

/** What the checks need to know of the worker they run in. */
export interface HealthSource {
  readonly workerId: number;
  slot(): number;
  /** Calls in flight (served and awaited) on this worker's bus. */
  inFlight(): number;
  /** The config version this worker runs. */
  configVersion(): number;
  /** Requests to the contract's methods served so far (0 when absent). */
  callsServed?(): number;
  /**
   * The serve times of the requests answered since the previous call, then forgets them; `null`
   * when none was (and when absent).
   */
  takeCallDurations?(): CallDurations | null;
}

/**
 * A worker's health checks, found as `bus.health`. The primary pings every ready worker on an
 * interval; the worker answers with a {@link HealthReport} that includes every check's result.
 * @category Health
 */
export class HealthChecks {
  private readonly checks = new Map<string, HealthCheck>();
  private histogram: IntervalHistogram | undefined;
  private lastElu: EventLoopUtilization | undefined;
  /**
   * Node's `histogram.reset()` (and `enable()`) forget the previous tick, so the first delay
   * after one is never recorded: a stall starting right after a report would vanish. A one-shot
   * timer armed at each of them measures that window; its lateness joins the next report's `max`.
   */
  private gapTimer: NodeJS.Timeout | undefined;
  private gapMs = 0;
  private requests: number | undefined;

  /** @internal Made by the health extension's worker side (and by tests). */
  constructor(private readonly source: HealthSource) {}

  /**
   * Registers an app check, run on every health ping (concurrently with the others, each with
   * the primary's `checkTimeoutMs`, default half the ping interval). Its result appears in the
   * report under `checks[name]`: `{ ok, durationMs, value? , error? }`. A failing check is
   * reported, it does not by itself get the worker replaced.
   *
   * @param name - a unique, non-empty name, e.g. `'db'`.
   * @param check - sync or async; resolves (optionally with a JSON value) when healthy, throws
   *   or rejects when not.
   * @returns a function that removes the check.
   * @throws {@link BusError} `INVALID_ARGUMENT` (synchronously) for an empty or taken name, or a
   *   check that is not a function.
   */
  addCheck(name: string, check: HealthCheck): () => void {
    if (typeof name !== 'string' || name.length === 0) {
      throw new BusError('INVALID_ARGUMENT', 'health.addCheck: name must be a non-empty string');
    }
    if (typeof check !== 'function') {
      throw new BusError('INVALID_ARGUMENT', `health.addCheck: check '${name}' must be a function`);
    }
    if (this.checks.has(name)) {
      throw new BusError('INVALID_ARGUMENT', `health.addCheck: '${name}' is already registered`);
    }
    this.checks.set(name, check);
    return () => {
      if (this.checks.get(name) === check) this.checks.delete(name);
    };
  }

  /**
   * Counts `n` requests the app served (e.g. HTTP requests), reported to the primary with the next
   * health reports (`requests`) and summed over the cluster in the management API's
   * `primary.requests`. Cheap: a number added, nothing sent.
   *
   * @param n - a non-negative integer. @default 1
   * @throws {@link BusError} `INVALID_ARGUMENT` (synchronously) when `n` is not a non-negative
   *   safe integer.
   */
  countRequests(n = 1): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `health.countRequests: n must be a non-negative integer, got ${String(n)}`,
      );
    }
    this.requests = (this.requests ?? 0) + n;
  }

  /** The names of the registered checks. */
  get names(): string[] {
    return [...this.checks.keys()];
  }

  /** @internal Starts measuring the event loop (at the first ping). Idempotent. */
  start(): void {
    if (this.histogram !== undefined) return;
    this.histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.histogram.enable();
    this.armGap(); // enable(), like reset(), records nothing until its second tick
    this.lastElu = performance.eventLoopUtilization();
  }

  /** @internal Stops measuring (at close). */
  stop(): void {
    this.histogram?.disable();
    this.histogram = undefined;
    clearTimeout(this.gapTimer);
  }

  private armGap(): void {
    clearTimeout(this.gapTimer);
    const armedAt = performance.now();
    this.gapTimer = setTimeout(() => {
      this.gapMs = Math.max(this.gapMs, performance.now() - armedAt - RESOLUTION_MS);
    }, RESOLUTION_MS);
    this.gapTimer.unref();
  }

  /** @internal Measures, runs every check (each bounded by `checkTimeoutMs`), and reports. */
  async report(checkTimeoutMs: number): Promise<HealthReport> {
    const checks = await this.runChecks(checkTimeoutMs);
    // After a stall, the histogram's own timer is due before any new timer: one turn of the
    // timers phase lets it record the stall before it is read.
    await new Promise((resolve) => setTimeout(resolve, 1));
    const memory = process.memoryUsage();
    const h = this.histogram;
    const ms = (ns: number) => (Number.isFinite(ns) ? Math.max(0, ns / 1e6 - RESOLUTION_MS) : 0);
    const delay =
      h === undefined || h.count === 0
        ? { p50: 0, p99: 0, max: this.gapMs }
        : {
            p50: ms(h.percentile(50)),
            p99: ms(h.percentile(99)),
            max: Math.max(ms(h.max), this.gapMs),
          };
    h?.reset();
    this.gapMs = 0;
    if (h !== undefined) this.armGap();
    const elu = performance.eventLoopUtilization();
    const utilization =
      this.lastElu === undefined
        ? elu.utilization
        : performance.eventLoopUtilization(elu, this.lastElu).utilization;
    this.lastElu = elu;
    const results = Object.values(checks);
    const pools = poolStats();
    return {
      workerId: this.source.workerId,
      slot: this.source.slot(),
      pid: process.pid,
      at: Date.now(),
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      eventLoopDelayMs: delay,
      eventLoopUtilization: utilization,
      inFlightCalls: this.source.inFlight(),
      callsServed: this.source.callsServed?.() ?? 0,
      callDurationMs: this.source.takeCallDurations?.() ?? null,
      ...(this.requests === undefined ? {} : { requests: this.requests }),
      uptimeMs: Math.round(process.uptime() * 1000),
      configVersion: this.source.configVersion(),
      checks,
      healthy: results.every((r) => r.ok),
      ...(pools.length > 0 ? { pools } : {}),
    };
  }

  private async runChecks(timeoutMs: number): Promise<Record<string, HealthCheckResult>> {
    const entries = [...this.checks.entries()];
    const results = await Promise.all(entries.map(([, check]) => runCheck(check, timeoutMs)));
    const out: Record<string, HealthCheckResult> = {};
    entries.forEach(([name], i) => {
      out[name] = results[i]!;
    });
    return out;
  }
}

async function runCheck(check: HealthCheck, timeoutMs: number): Promise<HealthCheckResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const elapsed = () => Math.round((performance.now() - started) * 1000) / 1000;
  try {
    const value = await Promise.race([
      Promise.resolve().then(check),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
        timer.unref();
      }),
    ]);
    return value === undefined
      ? { ok: true, durationMs: elapsed() }
      : { ok: true, durationMs: elapsed(), value };
  } catch (error) {
    return { ok: false, durationMs: elapsed(), error: describe(error) };
  } finally {
    clearTimeout(timer);
  }
}

function describe(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return 'a check failed with a value that could not be described';
  }
}
