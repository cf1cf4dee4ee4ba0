/**
 * The checks of the options an operator sets (besides their code's): the worker bounds
 * (`minWorkers`, `maxWorkers`), the management API's address and token, the periodic cluster
 * stats line, and how worker output is shown (`logs`).
 *
 * @module
 */
import os from 'node:os';
import { BusError } from '../errors.js';
import { checkCount } from '../util/count.js';
import { describeValue } from '../util/describe.js';
import { checkDurationMs } from '../util/duration.js';

/**
 * How each worker line reaches the primary's stdout and stderr (`startCluster({ logs })`).
 * @category Supervision
 */
export type LogsMode = 'inherit' | 'prefix' | 'json';

/** The interval of `logClusterStats: true`, in ms. */
export const DEFAULT_STATS_INTERVAL_MS = 30_000;

/** The management API's address, resolved: off (undefined) unless it has a port. */
export interface ResolvedManagement {
  readonly port: number;
  readonly host: string;
  readonly token: string | undefined;
}

/** @internal The worker count and its bounds, checked: `min <= workers <= max`. */
export interface WorkerBounds {
  readonly workers: number;
  readonly minWorkers: number;
  /** Undefined: no upper bound. */
  readonly maxWorkers: number | undefined;
}

/**
 * @internal Checks `workers`, `minWorkers` and `maxWorkers`. Without `workers`, the default
 * (`os.availableParallelism()`) is brought within the bounds; a `workers` given outside them is
 * refused.
 */
export function resolveWorkerBounds(
  workers: unknown,
  minWorkers: unknown,
  maxWorkers: unknown,
): WorkerBounds {
  const min = checkCount(minWorkers ?? 1, 'startCluster: minWorkers', 1);
  const max =
    maxWorkers === undefined ? undefined : checkCount(maxWorkers, 'startCluster: maxWorkers', 1);
  if (max !== undefined && min > max) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: minWorkers (${min}) must be <= maxWorkers (${max})`,
      { data: { min, max } },
    );
  }
  if (workers === undefined) {
    const cores = os.availableParallelism();
    return {
      workers: Math.min(Math.max(cores, min), max ?? Number.POSITIVE_INFINITY),
      minWorkers: min,
      maxWorkers: max,
    };
  }
  const count = checkCount(workers, 'startCluster: workers', 1);
  if (count < min || (max !== undefined && count > max)) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: workers (${count}) must be within minWorkers..maxWorkers (${min}..${max ?? 'no bound'})`,
      { data: { min, max: max ?? null, requested: count } },
    );
  }
  return { workers: count, minWorkers: min, maxWorkers: max };
}

/** @internal Refuses a scale to `count` slots outside the bounds (`data`: `{ min, max, requested }`). */
export function checkScaleBounds(count: number, bounds: WorkerBounds): void {
  const { minWorkers: min, maxWorkers: max } = bounds;
  if (count < min || (max !== undefined && count > max)) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `scale: ${count} workers is outside minWorkers..maxWorkers (${min}..${max ?? 'no bound'}); nothing changed`,
      { data: { min, max: max ?? null, requested: count } },
    );
  }
}

/** Loopback names and addresses: `localhost`, `127.0.0.0/8`, `::1` (also IPv4-mapped). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/**
 * @internal Checks `management`: undefined (off) unless it has a port. The host defaults to
 * `127.0.0.1`; a host that is not loopback needs a token.
 */
export function resolveManagement(value: unknown): ResolvedManagement | undefined {
  if (value === undefined || value === false) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: management must be { port, host, token } or false, got ${describeValue(value)}`,
    );
  }
  const { port, host = '127.0.0.1', token } = value as Record<string, unknown>;
  if (port === undefined) return undefined;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: management.port must be a TCP port, an integer 0..65535, got ${describeValue(port)}`,
    );
  }
  if (typeof host !== 'string' || host.trim() === '') {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: management.host must be a host name or address, got ${describeValue(host)}`,
    );
  }
  if (token !== undefined && (typeof token !== 'string' || token === '')) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: management.token must be a string that is not empty, got ${describeValue(token)}`,
    );
  }
  if (token === undefined && !isLoopback(host)) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: the management API would listen on ${host}, which is not loopback, without a token: set management.token (CLUSTER_API_TOKEN), or bind to 127.0.0.1`,
    );
  }
  return { port, host, token };
}

/** @internal `logClusterStats`: the interval in ms, or undefined when off. */
export function resolveStatsInterval(value: unknown): number | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return DEFAULT_STATS_INTERVAL_MS;
  if (typeof value !== 'number') {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: logClusterStats must be true, false or an interval in ms, got ${describeValue(value)}`,
    );
  }
  return checkDurationMs(value, 'startCluster: logClusterStats');
}

/** @internal `logs`: one of {@link LogsMode}. */
export function resolveLogs(value: unknown): LogsMode {
  if (value === undefined) return 'inherit';
  if (value === 'inherit' || value === 'prefix' || value === 'json') return value;
  throw new BusError(
    'INVALID_ARGUMENT',
    `startCluster: logs must be 'inherit', 'prefix' or 'json', got ${describeValue(value)}`,
  );
}
