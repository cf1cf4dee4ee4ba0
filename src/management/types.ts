/**
 * The shapes of the management API: its options (`startCluster({ management })`), what the
 * running app exposes of it (`app.management`), the metrics provider it serves `GET /metrics`
 * with, and the JSON bodies of `GET /health`, `GET /stats` and the operations.
 *
 * @module
 */

/**
 * Options of the management API, an HTTP server in the primary (`startCluster({ management })`).
 * @category Operations
 */
export interface ManagementOptions {
  /**
   * The TCP port to listen on; `0` lets the OS pick a free one (see `app.management.url`).
   * Without a port here or in `CLUSTER_API_PORT`, the management API is off.
   */
  readonly port?: number;
  /**
   * The address to bind. A non-loopback one (e.g. `'0.0.0.0'`) requires a `token`, else
   * `startCluster` rejects with `INVALID_ARGUMENT` before forking any worker.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /**
   * The bearer token every endpoint but `GET /health` (and the dashboard's static files)
   * requires, as `Authorization: Bearer <token>`; visible ASCII, no spaces. Without one (on
   * loopback only), those endpoints answer 403 saying to set one.
   */
  readonly token?: string;
  /** A request body larger than this many bytes gets 413. @default 16_384 */
  readonly maxBodyBytes?: number;
  /** A request not answered within this many ms of its headers gets 408. @default 10_000 */
  readonly requestTimeoutMs?: number;
  /** Requests served at once; one more gets 503 with `Retry-After: 1`. @default 8 */
  readonly maxConcurrentRequests?: number;
}

/**
 * What the metrics provider answers `GET /metrics` with (the management API serves it as is).
 * @category Operations
 */
export interface MetricsResponse {
  /** The HTTP status, e.g. 200. */
  readonly status: number;
  /** e.g. `text/plain; version=0.0.4; charset=utf-8` (the Prometheus text format). */
  readonly contentType: string;
  readonly body: string;
}

/** @internal Answers `GET /metrics` (supplied by the metrics feature). */
export type MetricsProvider = () => Promise<MetricsResponse>;

/** The running management API, as `app.management`. @category Operations */
export interface ManagementInfo {
  /** Its base URL, e.g. `http://127.0.0.1:9000/` (the port it bound, with `port: 0`). */
  readonly url: string;
  /** The address it bound. */
  readonly host: string;
  /** The port it bound. */
  readonly port: number;
}

/** The body of `GET /health`: 200 with `status: 'ok'`, 503 otherwise. @category Operations */
export interface HealthBody {
  readonly status: 'ok' | 'unhealthy' | 'closing';
  /** Slots (the worker count the cluster keeps). */
  readonly slots: number;
  /** Slots whose worker is ready and not declared unhealthy. */
  readonly healthy: number;
  /** Why each unhealthy slot is, e.g. `{ slot: 1, reason: 'restart limit' }`. */
  readonly problems: readonly { readonly slot: number; readonly reason: string }[];
}

/**
 * A rolling restart started by `POST /restart`, as `GET /restart/:id` and `/stats` show it.
 * @category Operations
 */
export interface RestartProgress {
  readonly id: string;
  readonly state: 'running' | 'done' | 'failed';
  /** ms since the epoch. */
  readonly startedAt: number;
  /** ms since the epoch; null while running. */
  readonly endedAt: number | null;
  /** Slots to replace. */
  readonly total: number;
  /** Slots whose new worker is ready so far. */
  readonly replaced: number;
  /** Once done: `{ slot, from, to }` per slot (worker ids). */
  readonly slots: readonly {
    readonly slot: number;
    readonly from: number | null;
    readonly to: number;
  }[];
  /** Why it failed: a BusError's code and message. */
  readonly error: { readonly code: string; readonly message: string } | null;
}

/** A scaling started by `POST /scale`, as `/stats` shows it. @category Operations */
export interface ScaleProgress {
  readonly id: string;
  readonly state: 'running' | 'done' | 'failed';
  readonly from: number;
  readonly to: number;
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly error: { readonly code: string; readonly message: string } | null;
}

/**
 * One worker in `GET /stats`. Figures from its health report are null before the first one.
 * @category Operations
 */
export interface WorkerStats {
  readonly slot: number;
  readonly workerId: number;
  readonly pid: number | null;
  readonly state: 'starting' | 'ready' | 'draining';
  /** Ready, and not declared unhealthy by the health monitor. */
  readonly healthy: boolean;
  /** Since its fork, in ms. */
  readonly uptimeMs: number;
  /** Workers forked into its slot after the slot's first one (crash, rolling, unhealthy). */
  readonly restarts: number;
  readonly rssBytes: number | null;
  readonly heapUsedBytes: number | null;
  /** Over the interval before its last report, in ms. */
  readonly eventLoopDelayMs: { readonly p50: number; readonly p99: number } | null;
  readonly inFlightCalls: number | null;
  /** Requests to the contract's methods its bus served. */
  readonly callsServed: number | null;
  /** `callsServed` per second between its last two reports. */
  readonly callsPerSecond: number | null;
  /**
   * How long the requests it answered over the interval before its last report took to serve
   * (receipt to answer), in ms, and how many; null before its first report and when it answered
   * none in that interval.
   */
  readonly callDurationMs: {
    readonly p50: number;
    readonly p99: number;
    readonly max: number;
    readonly count: number;
  } | null;
  /** What it counted with `bus.health.countRequests()`; null if it never did. */
  readonly requests: number | null;
  /** When the primary received its last report, in ms since the epoch. */
  readonly lastReportAt: number | null;
}

/** The body of `GET /stats`. @category Operations */
export interface StatsBody {
  /** When it was taken, in ms since the epoch. */
  readonly at: number;
  readonly primary: {
    readonly pid: number;
    /** The primary process's uptime, in ms. */
    readonly uptimeMs: number;
    /** The workers' `bus.health.countRequests()` summed (exited ones included); null if none counts. */
    readonly requests: number | null;
    /** Workers forked to take over a slot from another (crash, rolling restart, unhealthy). */
    readonly restarts: number;
    /** Worker exits the primary did not ask for. */
    readonly crashes: number;
    /** Every worker forked since the start. */
    readonly workersSpawned: number;
  };
  readonly cluster: {
    /** Slots (the worker count the cluster keeps). */
    readonly workers: number;
    /** Live workers in state `ready`. */
    readonly active: number;
    /** The scale bounds (`POST /scale` outside them gets 409); `max` null: unbounded. */
    readonly min: number;
    readonly max: number | null;
    /** Slots whose worker is healthy (as `GET /health` counts them). */
    readonly healthy: number;
  };
  readonly workers: readonly WorkerStats[];
  /** The last rolling restart started through the API, or null. */
  readonly restart: RestartProgress | null;
  /** The last scaling started through the API, or null. */
  readonly scale: ScaleProgress | null;
}
