/**
 * The shapes of the health extension: what a worker reports on each ping, what the primary keeps
 * of every worker, and the options of the primary's monitor. The wire schemas live here too, so
 * that both sides validate what they receive with the same definition.
 *
 * @module
 */
import { z } from 'zod';
import { type PoolStats, PoolStatsSchema } from '../threads/registry.js';

/** One app check's outcome in a {@link HealthReport}. @category Health */
export interface HealthCheckResult {
  /** True when the check resolved (whatever its value), false when it threw or timed out. */
  readonly ok: boolean;
  /** How long the check took, in ms. */
  readonly durationMs: number;
  /** What the check resolved with, when it is plain JSON (e.g. `{ latencyMs: 3 }`). */
  readonly value?: unknown;
  /** Why it failed: the error's message, or `timed out after N ms`. */
  readonly error?: string;
}

/**
 * Event-loop delay percentiles over the interval since the previous report, in ms.
 * @category Health
 */
export interface EventLoopDelay {
  /** Median delay beyond the sampling resolution, in ms. */
  readonly p50: number;
  /** 99th percentile, in ms. */
  readonly p99: number;
  /** Largest delay seen, in ms. */
  readonly max: number;
}

/**
 * How long a worker took to serve requests to the contract's methods over the interval since its
 * previous report, in ms: from the request's receipt by the worker's bus to its answer (result or
 * error), as {@link HealthReport.callsServed} counts them. Streams and the bus's own system calls
 * are not included.
 * @category Health
 */
export interface CallDurations {
  /** Median, in ms. */
  readonly p50: number;
  /** 99th percentile, in ms. */
  readonly p99: number;
  /** Longest, in ms. */
  readonly max: number;
  /** Requests answered in the interval. */
  readonly count: number;
}

/**
 * What a worker answers to a health ping. Memory in bytes, times in ms; the event-loop figures
 * cover the interval since the previous report.
 * @category Health
 */
export interface HealthReport {
  /** Node's worker id. */
  readonly workerId: number;
  /** The worker's stable slot. */
  readonly slot: number;
  /** The worker's process id. */
  readonly pid: number;
  /** When the worker measured, in ms since the epoch (its clock). */
  readonly at: number;
  /** Resident set size (`process.memoryUsage().rss`), in bytes. */
  readonly rssBytes: number;
  /** V8 heap in use (`process.memoryUsage().heapUsed`), in bytes. */
  readonly heapUsedBytes: number;
  /** Event-loop delay (`perf_hooks.monitorEventLoopDelay`) beyond its 10 ms resolution, in ms. */
  readonly eventLoopDelayMs: EventLoopDelay;
  /** Event-loop utilization (`performance.eventLoopUtilization`), 0..1, since the previous report. */
  readonly eventLoopUtilization: number;
  /** Calls this worker is serving plus calls it is waiting on (the ping excluded). */
  readonly inFlightCalls: number;
  /**
   * Requests to the contract's methods this worker's bus has served since it started (answered
   * or failed; the bus's own system calls excluded).
   */
  readonly callsServed: number;
  /**
   * How long the requests answered since the previous report took to serve (receipt to answer),
   * in ms; `null` when none was answered in that interval.
   */
  readonly callDurationMs: CallDurations | null;
  /**
   * What the app counted with `bus.health.countRequests(n)` since the worker started (e.g. its
   * HTTP requests); absent until it first counts.
   */
  readonly requests?: number;
  /** Time since the worker process started, in ms. */
  readonly uptimeMs: number;
  /** The config version the worker runs (0 without a config schema). */
  readonly configVersion: number;
  /** The app's checks (`bus.health.addCheck`), by name. */
  readonly checks: Readonly<Record<string, HealthCheckResult>>;
  /** True when every check is `ok` (true without checks). */
  readonly healthy: boolean;
  /** The worker's open thread pools (`clusterbus/threads`), when it has some. */
  readonly pools?: readonly PoolStats[];
}

/**
 * What the primary knows of one worker: its own view (misses, last seen) and the last report.
 * @category Health
 */
export interface WorkerHealth {
  /** Node's worker id. */
  readonly workerId: number;
  /** The worker's stable slot. */
  readonly slot: number;
  /** The worker's process id. */
  readonly pid: number | undefined;
  /** Where the worker is in its life. */
  readonly state: WorkerState;
  /** Consecutive pings not answered within `intervalMs` (0 after each answer). */
  readonly misses: number;
  /** Consecutive reports over `maxMemoryBytes`. */
  readonly overMemory: number;
  /** When the primary last received a report, in ms since the epoch; undefined before the first. */
  readonly lastSeenAt: number | undefined;
  /** The last report received, undefined before the first. */
  readonly report: HealthReport | undefined;
}

/**
 * Where a worker is in its life: `starting` (forked, not ready yet), `ready` (serving; pinged),
 * `draining` (being replaced or stopped: no new `'any'` calls, not pinged).
 * @category Health
 */
export type WorkerState = 'starting' | 'ready' | 'draining';

/** What `app.health()` returns. @category Health */
export interface ClusterHealth {
  /** When this snapshot was taken, in ms since the epoch. */
  readonly at: number;
  /** Whether the primary is pinging (false with `health: false`, or after close). */
  readonly monitoring: boolean;
  /** One entry per live worker, ascending by slot, then worker id. */
  readonly workers: readonly WorkerHealth[];
}

/** Options of the primary's health monitor (`startCluster({ health })`). @category Health */
export interface HealthOptions {
  /**
   * Ping every ready worker this often, in ms. A ping not answered within the same time is a
   * miss.
   * @default 5_000
   */
  readonly intervalMs?: number;
  /**
   * Replace a worker after this many consecutive misses (a blocked event loop, a busy loop). It
   * is replaced within `intervalMs × (misses + 1)` of the moment it stops answering.
   * @default 3
   */
  readonly misses?: number;
  /**
   * Replace a worker whose resident set size (`rssBytes`) stays over this many bytes for
   * {@link HealthOptions.memorySamples} consecutive reports. Undefined: no memory limit.
   * @default undefined
   */
  readonly maxMemoryBytes?: number;
  /**
   * How many consecutive reports over `maxMemoryBytes` make a worker unhealthy.
   * @default 2
   */
  readonly memorySamples?: number;
  /**
   * Each app check has this long to settle, in ms, before it counts as failed (the report is
   * sent anyway, so a slow check is not a missed ping).
   * @default intervalMs / 2
   */
  readonly checkTimeoutMs?: number;
}

/** Why the primary judged a worker unhealthy. @category Health */
export type UnhealthyReason = 'missed-pings' | 'memory';

// ---------------------------------------------------------------------------------------------
// Wire schemas: both ends validate what they receive.

/** @internal The `$health.ping` payload, hub -> worker. */
export const PingSchema = z.object({
  /** Ping sequence number, echoed in the report. */
  seq: z.number().int().nonnegative(),
  /** The check timeout, in ms. */
  checkTimeoutMs: z.number().positive(),
});

/** @internal The `$health.ping` payload. */
export type Ping = z.infer<typeof PingSchema>;

const CheckResultSchema = z.object({
  ok: z.boolean(),
  durationMs: z.number(),
  value: z.unknown().optional(),
  error: z.string().optional(),
});

/** @internal The `$health.report` payload, worker -> hub. */
export const ReportMessageSchema = z.object({
  seq: z.number().int().nonnegative(),
  report: z.object({
    workerId: z.number(),
    slot: z.number(),
    pid: z.number(),
    at: z.number(),
    rssBytes: z.number(),
    heapUsedBytes: z.number(),
    eventLoopDelayMs: z.object({ p50: z.number(), p99: z.number(), max: z.number() }),
    eventLoopUtilization: z.number(),
    inFlightCalls: z.number(),
    callsServed: z.number().int().nonnegative(),
    callDurationMs: z
      .object({
        p50: z.number(),
        p99: z.number(),
        max: z.number(),
        count: z.number().int().positive(),
      })
      .nullable(),
    requests: z.number().int().nonnegative().optional(),
    uptimeMs: z.number(),
    configVersion: z.number(),
    checks: z.record(z.string(), CheckResultSchema),
    healthy: z.boolean(),
    pools: z.array(PoolStatsSchema).optional(),
  }),
});

/** @internal The health extension's verbs, one-way messages: `$health.ping`, `$health.report`. */
export const HealthVerb = {
  /** hub -> worker: measure and report. */
  ping: 'ping',
  /** worker -> hub: the report, with the ping's sequence number. */
  report: 'report',
} as const;
