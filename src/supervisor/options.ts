/**
 * The options of `startCluster`, `app.close()` and `app.restart()`, their defaults, and their
 * checks.
 *
 * @module
 */

import type { BusOptions } from '../bus/base.js';
import { DEFAULT_CONFIG_ACK_TIMEOUT_MS } from '../config/hub.js';
import type { ConfigInput, Contract } from '../contract.js';
import type { MeshFactory } from '../core/mesh.js';
import { BusError } from '../errors.js';
import { type ResolvedHealthOptions, resolveHealthOptions } from '../health/hub.js';
import type { HealthOptions } from '../health/types.js';
import { type ResolvedManagementOptions, resolveManagementOptions } from '../management/options.js';
import type { ManagementOptions } from '../management/types.js';
import type { MetricsOptions } from '../metrics/types.js';
import type { PersistOptions, StoreHostOptions } from '../state/types.js';
import { checkCount } from '../util/count.js';
import { describeValue } from '../util/describe.js';
import { checkDurationMs } from '../util/duration.js';
import {
  type LogsMode,
  resolveLogs,
  resolveManagement,
  resolveStatsInterval,
  resolveWorkerBounds,
} from './ops-options.js';
import { type ResolvedSignals, resolveSignals, type SignalOptions } from './signals.js';

// The count check moved to util/count.ts; re-exported until supervisor/cluster.ts imports it there.
export type { SignalOptions } from './signals.js';

/** Options of {@link startCluster}. @category Supervision */
export interface StartClusterOptions<C extends Contract> extends BusOptions {
  /** The contract every worker connects with. */
  readonly contract: C;
  /**
   * Makes this cluster one node of a mesh of hosts, e.g. `natsMesh({ servers, node })` from
   * `clusterbus/nats`: `{ node, worker }` targets, `'any'` and `callAll` across nodes, `publish`
   * to every node, stores, locks and config shared by every node. See docs/nats.md.
   */
  readonly mesh?: MeshFactory;
  /**
   * How many workers (slots) to fork. Unset: `--workers N` on the primary's command line, else
   * `CLUSTER_WORKERS` (see {@link StartClusterOptions.readEnv}).
   * @default os.availableParallelism(), brought within minWorkers..maxWorkers
   */
  readonly workers?: number;
  /**
   * The fewest workers: `workers` and `app.scale(n)` below it are refused with
   * `INVALID_ARGUMENT`. Unset: `CLUSTER_MIN_WORKERS`.
   * @default 1
   */
  readonly minWorkers?: number;
  /**
   * The most workers: `workers` and `app.scale(n)` above it are refused with `INVALID_ARGUMENT`
   * (nothing changes). Unset: `CLUSTER_MAX_WORKERS`.
   * @default undefined (no bound)
   */
  readonly maxWorkers?: number;
  /**
   * Take the options this code leaves unset from `--workers N` on the primary's command line and
   * from the environment (`CLUSTER_WORKERS`, `CLUSTER_MIN_WORKERS`, `CLUSTER_MAX_WORKERS`,
   * `HEALTH_CHECK_INTERVAL`, `WORKER_RESTART_DELAY`, `GRACEFUL_SHUTDOWN_TIMEOUT`,
   * `WORKER_MEMORY_LIMIT`, `CLUSTER_API_PORT`, `CLUSTER_API_HOST`, `CLUSTER_API_TOKEN`,
   * `LOG_CLUSTER_STATS`): code, then flag, then environment, then default. A value that applies
   * and is malformed rejects with `INVALID_ARGUMENT` naming the variable and the value; one the
   * code overrides is ignored. `false` reads neither (`env` is the workers' environment).
   * @default true
   */
  readonly readEnv?: boolean;
  /**
   * Log a one-line cluster summary on the primary's stdout (workers, active, healthy, restarts,
   * total rss, worst event-loop p99): `true` every 30_000 ms, or every this many ms. Unset:
   * `LOG_CLUSTER_STATS`.
   * @default false
   */
  readonly logClusterStats?: boolean | number;
  /**
   * How worker output is shown: `'inherit'` (stdout inherited, stderr forwarded as it comes),
   * `'prefix'` (every line as `[slot 2 · worker 7] …`), `'json'` (every line one JSON object
   * `{ time, slot, workerId, pid, stream, line }`). Lines are never cut or interleaved mid-line
   * (longer than 64 KiB: in pieces, see docs/operating.md); stderr stays stderr.
   * @default 'inherit'
   */
  readonly logs?: LogsMode;
  /** The worker script (as `cluster.setupPrimary({ exec })`). @default process.argv[1], this script */
  readonly exec?: string;
  /** Arguments passed to each worker. @default process.argv.slice(2) */
  readonly args?: readonly string[];
  /** Node options of each worker (e.g. `['--import', 'tsx']`). @default process.execArgv */
  readonly execArgv?: readonly string[];
  /** Extra environment variables of each worker, on top of `process.env`. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Reject with `TIMEOUT` if the workers are not all ready within this many ms (the forked
   * workers are then killed; the message says, per worker, whether it never connected or
   * connected with `manualReady` and never called `bus.ready()`). Workers that keep exiting
   * before they are ready make `startCluster` reject sooner, with `STARTUP_FAILED`. Also the time
   * a replacement (rolling restart, unhealthy worker, scale-up) has to become ready.
   * @default 30_000
   */
  readonly readyTimeoutMs?: number;
  /**
   * Restart a worker that exits without being asked to (a crash, `process.exit()`). With
   * `false`, a worker that exits before it is ready fails `startCluster` with `STARTUP_FAILED`.
   * @default true
   */
  readonly restart?: boolean;
  /**
   * At most this many restarts of one slot within {@link StartClusterOptions.restartWindowMs};
   * one more crash stops restarting that slot and emits `worker:restart-limit` (restart
   * intensity, as in Erlang/OTP).
   * @default 10
   */
  readonly maxRestarts?: number;
  /** The window of `maxRestarts`, in ms. Restarts older than this are forgotten. @default 60_000 */
  readonly restartWindowMs?: number;
  /**
   * Backoff of crash restarts, its first step: the first restart of a slot within the window is
   * immediate, the second waits this many ms, each further one twice as long. Unset:
   * `WORKER_RESTART_DELAY`.
   * @default 100
   */
  readonly restartBackoffMs?: number;
  /** The longest backoff delay, in ms. @default 10_000 */
  readonly maxRestartBackoffMs?: number;
  /**
   * A drained worker (replaced, scaled down, or at a signal's close) still alive this many ms
   * after the drain began is killed with SIGKILL. Unset: `GRACEFUL_SHUTDOWN_TIMEOUT`.
   * @default 10_000
   */
  readonly drainTimeoutMs?: number;
  /**
   * The initial config, validated against the contract's config schema (`VALIDATION`). Every
   * worker has it before its `connect()` resolves. When omitted, `configFile` is read instead.
   */
  readonly config?: ConfigInput<C>;
  /**
   * A JSON file holding the config: read at start when `config` is omitted, and read again on
   * SIGHUP (with `signals`) or `app.config.reload()`.
   */
  readonly configFile?: string;
  /**
   * Each worker must acknowledge a config update within this many ms (else it is reported as
   * `failed` with `TIMEOUT`).
   * @default 10_000
   */
  readonly configAckTimeoutMs?: number;
  /**
   * Health checks: `{ intervalMs, misses, maxMemoryBytes, memorySamples, checkTimeoutMs }`, or
   * `false` to turn them off. Unset `intervalMs` and `maxMemoryBytes`: `HEALTH_CHECK_INTERVAL`,
   * `WORKER_MEMORY_LIMIT`.
   * @default {} (on: ping every 5_000 ms, replace after 3 misses, no memory limit)
   */
  readonly health?: HealthOptions | false;
  /**
   * Handle the primary's signals. `true`: the default map, `{ shutdown: ['SIGTERM', 'SIGINT'],
   * restart: 'SIGUSR2', reload: 'SIGHUP' }`: a shutdown signal closes the cluster gracefully
   * (with `drainTimeoutMs`) and then exits with 128 + the signal's number (143 for SIGTERM, 130
   * for SIGINT; `process.on('exit')` hooks run); the restart signal
   * runs a rolling restart; the reload signal reloads `configFile` (only listened to when one is
   * given). A {@link SignalOptions} changes some of them (`false` turns one action off); `false`
   * leaves the process's signals alone. The workers clusterbus forks ignore every signal the
   * primary handles while their bus is open (a signal sent to the whole process group, as by
   * Ctrl-C or nodemon, is the primary's). The listeners are removed when the cluster closes.
   * Rejects with `INVALID_ARGUMENT` for an unknown key, a name that is not a catchable signal, or
   * a signal given to two actions.
   * @default true
   */
  readonly signals?: boolean | SignalOptions;
  /** Limits of the shared stores: `maxEntries` (default 10_000 per store), per-store `limits`. */
  readonly store?: StoreHostOptions<C>;
  /**
   * Persists every store to a snapshot file: loaded at start (missing: empty stores; unreadable
   * or corrupt: `startCluster` rejects with `PERSIST_FAILED` before forking any worker), written
   * atomically every `intervalMs` (default 1_000 ms) when something changed, and on `close()`.
   */
  readonly persist?: PersistOptions;
  /**
   * The Prometheus metrics (`app.metrics()`, `createMetricsScraper`; docs/metrics.md):
   * `appMetrics` (`'aggregate'` or `'per-slot'`, default `'aggregate'`), `collectTimeoutMs`
   * (each worker's time to answer a scrape, default 2_000 ms).
   */
  readonly metrics?: MetricsOptions;
  /**
   * The management API, an HTTP server in the primary (`node:http`): `{ port, host, token,
   * maxBodyBytes, maxConcurrentRequests, requestTimeoutMs }` (see {@link ManagementOptions} and
   * docs/management.md). Off unless a port is given, here or in `CLUSTER_API_PORT` (`CLUSTER_API_HOST`
   * and `CLUSTER_API_TOKEN` fill the host and token left unset; `false`: off, whatever the
   * environment says); `port: 0` picks a free port (`app.management.url`).
   * Closed by `app.close()`. `startCluster` rejects with `INVALID_ARGUMENT`, before forking, for a
   * bad value, a non-loopback `host` without a `token`, or a port it cannot listen on.
   * @default undefined (off)
   */
  readonly management?: ManagementOptions | false;
}

/** Options of {@link ClusterApp.close}. @category Supervision */
export interface CloseOptions {
  /**
   * Workers still alive this many ms after the close began are killed with SIGKILL.
   * @default 10_000
   */
  readonly timeoutMs?: number;
}

/** Options of {@link ClusterApp.restart}. @category Supervision */
export interface RestartOptions {
  /**
   * Each new worker must be ready within this many ms, else the restart stops there and rejects
   * with `TIMEOUT` (the old worker of that slot keeps serving).
   * @default the cluster's `readyTimeoutMs`
   */
  readonly readyTimeoutMs?: number;
  /** Each old worker is killed if still alive this many ms after its drain began. @default the cluster's `drainTimeoutMs` */
  readonly drainTimeoutMs?: number;
}

/** @internal Checked options with defaults. */
export interface ResolvedOptions {
  readonly workers: number;
  readonly minWorkers: number;
  /** Undefined: no upper bound. */
  readonly maxWorkers: number | undefined;
  /** The cluster stats line's interval, in ms; undefined when off. */
  readonly logClusterStatsMs: number | undefined;
  readonly logs: LogsMode;
  readonly readyTimeoutMs: number;
  readonly restart: boolean;
  readonly maxRestarts: number;
  readonly restartWindowMs: number;
  readonly restartBackoffMs: number;
  readonly maxRestartBackoffMs: number;
  readonly drainTimeoutMs: number;
  readonly configAckTimeoutMs: number;
  readonly health: ResolvedHealthOptions | undefined;
  /** The signals the primary handles; undefined with `signals: false`. */
  readonly signals: ResolvedSignals | undefined;
  /** The management API's options; undefined when it is off. */
  readonly management: ResolvedManagementOptions | undefined;
}

/** @internal Checks every option; throws `INVALID_ARGUMENT`. */
export function resolveOptions(options: StartClusterOptions<Contract>): ResolvedOptions {
  if (typeof options !== 'object' || options === null || typeof options.contract !== 'object') {
    throw new BusError(
      'INVALID_ARGUMENT',
      'startCluster: options.contract is required (made by defineContract)',
    );
  }
  const bounds = resolveWorkerBounds(options.workers, options.minWorkers, options.maxWorkers);
  // Off unless a port is given; the address is checked first (a non-loopback host needs a token).
  const address = resolveManagement(options.management);
  const maxRestarts = checkCount(options.maxRestarts ?? 10, 'startCluster: maxRestarts', 0);
  if (options.configFile !== undefined && typeof options.configFile !== 'string') {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: configFile must be a path (a string), got ${describeValue(options.configFile)}`,
    );
  }
  return {
    ...bounds,
    logClusterStatsMs: resolveStatsInterval(options.logClusterStats),
    logs: resolveLogs(options.logs),
    readyTimeoutMs: checkDurationMs(options.readyTimeoutMs ?? 30_000, 'readyTimeoutMs'),
    restart: options.restart !== false,
    maxRestarts,
    restartWindowMs: checkDurationMs(options.restartWindowMs ?? 60_000, 'restartWindowMs'),
    restartBackoffMs: checkDurationMs(options.restartBackoffMs ?? 100, 'restartBackoffMs'),
    maxRestartBackoffMs: checkDurationMs(
      options.maxRestartBackoffMs ?? 10_000,
      'maxRestartBackoffMs',
    ),
    drainTimeoutMs: checkDurationMs(options.drainTimeoutMs ?? 10_000, 'drainTimeoutMs'),
    configAckTimeoutMs: checkDurationMs(
      options.configAckTimeoutMs ?? DEFAULT_CONFIG_ACK_TIMEOUT_MS,
      'configAckTimeoutMs',
    ),
    health: options.health === false ? undefined : resolveHealthOptions(options.health ?? {}),
    signals: resolveSignals(options.signals, options.configFile !== undefined),
    management:
      address === undefined
        ? undefined
        : resolveManagementOptions({ ...(options.management || {}), ...address }),
  };
}

/** @internal The primary bus's own options, those given (see {@link BusOptions}). */
export function primaryBusOptions(options: BusOptions): BusOptions {
  const picked: Record<string, unknown> = {};
  for (const key of BUS_OPTION_KEYS) if (options[key] !== undefined) picked[key] = options[key];
  return picked as BusOptions;
}

/** Every option of {@link BusOptions}, the primary bus's share of the `startCluster` options. */
const BUS_OPTION_KEYS = [
  'callTimeoutMs',
  'maxPayloadBytes',
  'maxQueueBytes',
  'maxDepth',
  'callSiteStacks',
  'allowContractMismatch',
] as const satisfies readonly (keyof BusOptions)[];
