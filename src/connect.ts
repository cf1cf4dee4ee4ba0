/**
 * The worker's composition root: `connect()` picks the transport (the IPC channel to the
 * primary) and the extensions a worker runs (state, config, health, drain), installs them on the
 * bus core, and exposes their APIs on the bus. Nothing else names a transport or an extension set
 * on this side.
 *
 * @module
 */
import cluster from 'node:cluster';
import { type ConnectOptions, WorkerCore } from './bus/worker.js';
import { configWorker, type WorkerConfig } from './config/extension.js';
import type { Contract } from './contract.js';
import { HUB_ID } from './core/extension.js';
import { drainWorker } from './drain/extension.js';
import type { CloseOnDrainOptions, DrainableServer, DrainHandler } from './drain/types.js';
import { BusError } from './errors.js';
import { type HealthChecks, healthWorker } from './health/extension.js';
import { withJobs } from './jobs/extension.js';
import type { JobsApi } from './jobs/types.js';
import { metricsWorker, type WorkerMetrics } from './metrics/extension.js';
import { peersWorker } from './peers/extension.js';
import type { PeersApi } from './peers/types.js';
import { stateExtension, withState } from './state/extension.js';
import type { StateApi } from './state/types.js';
import {
  forkedByClusterbus,
  PM2_CLUSTER_MODE_HINT,
  pm2ClusterMode,
  primarySignals,
} from './supervisor/env.js';
import { deferSignalsToPrimary } from './supervisor/signals.js';
import { clusterWorkerMembership } from './transport/cluster.js';
import type { Link } from './transport/link.js';
import { checkDurationMs } from './util/duration.js';

export type { ConnectOptions } from './bus/worker.js';

/**
 * What a worker's bus offers besides the core's calls and events: its extensions' APIs.
 * @category Lifecycle
 */
export interface WorkerApis<C extends Contract> extends PeersApi {
  /** The cluster's config as this worker runs it: `current` (typed), `version`, `onChange()`. */
  readonly config: WorkerConfig<C>;
  /** This worker's health checks: `addCheck(name, check)`, `countRequests(n)`. */
  readonly health: HealthChecks;
  /** This worker's metrics: `useRegistry(registry)`, the registry the primary reads (docs/metrics.md). */
  readonly metrics: WorkerMetrics;
  /** Whether the primary has asked this worker to drain (it is being replaced or stopped). */
  readonly draining: boolean;

  /**
   * Registers a drain handler, run when the primary drains this worker (rolling restart,
   * replacement, scale-down, close, SIGTERM): stop taking new work and finish what is in flight
   * (close servers, flush queues, close pools). Handlers run concurrently; the worker reports
   * itself drained when all have settled and its bus calls have settled, then Node disconnects
   * it and it exits when nothing keeps it alive. The primary kills it at `drainTimeoutMs`.
   * A handler that throws is reported on the `error` event.
   *
   * @returns a function that removes the handler.
   * @throws {@link BusError} `INVALID_ARGUMENT` (synchronously) for a handler that is not a function.
   */
  onDrain(handler: DrainHandler): () => void;

  /**
   * Closes an HTTP(S) server gracefully when this worker is drained, without failing a request:
   * it stops accepting connections (other workers get them), answers every further request with
   * `Connection: close` so keep-alive clients reconnect elsewhere, closes connections idle for
   * `idleGraceMs`, and the drain waits until every connection has ended. Unlike Node's
   * `server.close()`, it does not destroy idle keep-alive sockets at once (a client may be
   * writing its next request on one, and would get ECONNRESET).
   *
   * @param server - an `http.Server` or `https.Server` (HTTP/1.1).
   * @param options - `idleGraceMs` (default 1_000 ms).
   * @returns a function that undoes the registration.
   * @throws {@link BusError} `INVALID_ARGUMENT` (synchronously) for something that is not an
   *   http(s) server, or a bad `idleGraceMs`.
   */
  closeOnDrain(server: DrainableServer, options?: CloseOnDrainOptions): () => void;
}

/**
 * A worker's bus, made by {@link connect}: `handle`, `call`, `callAll`, `publish`, `subscribe`,
 * `store`, `lock`, `peers`, all routed through the primary, `singleton` and `schedule`, and
 * its extensions' APIs.
 * @category Lifecycle
 */
export type WorkerBus<C extends Contract> = WorkerCore<C> & StateApi<C> & JobsApi & WorkerApis<C>;

/**
 * @internal A worker bus over `link` with the worker's extensions installed (tests use it over an
 * in-memory link). `onWelcome` is told the outcome of the handshake.
 */
export function workerBus<C extends Contract>(
  contract: C,
  link: Link,
  workerId: number,
  options: ConnectOptions,
  onWelcome: (error?: BusError) => void,
): WorkerBus<C> {
  const core = new WorkerCore(contract, link, workerId, options, onWelcome);
  // Installed before anything can arrive: the welcome comes on a later tick.
  core.install(stateExtension(contract));
  const config = core.install(configWorker<C>(contract.config));
  const health = core.install(
    healthWorker({
      workerId,
      slot: () => core.slot,
      inFlight: () => core.pendingCount,
      callsServed: () => core.servedCount,
      takeCallDurations: () => core.observer.serveTimes.take(),
      configVersion: () => config.version,
    }),
  );
  const drain = core.install(drainWorker(() => core.pendingCount));
  const peers = core.install(peersWorker());
  const metrics = core.install(metricsWorker(core));
  return Object.defineProperties(withJobs(withState<C, WorkerCore<C>>(core)), {
    config: { value: config, enumerable: true },
    health: { value: health, enumerable: true },
    metrics: { value: metrics, enumerable: true },
    draining: { get: () => drain.draining, enumerable: true },
    peers: { value: () => peers.peers() },
    onDrain: { value: (handler: DrainHandler) => drain.onDrain(handler) },
    closeOnDrain: {
      value: (server: DrainableServer, opts?: CloseOnDrainOptions) =>
        drain.closeOnDrain(server, opts),
    },
  }) as WorkerBus<C>;
}

let current: WorkerBus<Contract> | undefined;

/**
 * Connects this cluster worker to the primary's bus and resolves once the primary has answered.
 * Call it once per worker process, early (messages the primary sends before it are not seen).
 *
 * @param contract - the same contract the primary was started with.
 * @param options - `callTimeoutMs` (default 30_000 ms), `connectTimeoutMs` (default 10_000 ms),
 *   `manualReady` (default false), `signals` (default true).
 * @returns the worker's {@link WorkerBus}, its `slot` and `config.current` already set.
 * @throws never synchronously; rejects with {@link BusError} `INVALID_ARGUMENT` outside a cluster
 *   worker, at once in a worker forked by PM2's cluster mode instead of clusterbus (run PM2 in
 *   fork mode: clusterbus is the primary), or when this process already has an open bus,
 *   `TIMEOUT` when the primary does not answer within `connectTimeoutMs`, `CLOSED` when the
 *   channel closes first, `VALIDATION` when the config the primary sent fails this worker's
 *   contract (or none came though the contract has a config schema).
 * @category Lifecycle
 */
export function connect<C extends Contract>(
  contract: C,
  options: ConnectOptions = {},
): Promise<WorkerBus<C>> {
  return new Promise<WorkerBus<C>>((resolve, reject) => {
    if (cluster.isPrimary || cluster.worker === undefined || typeof process.send !== 'function') {
      reject(
        new BusError(
          'INVALID_ARGUMENT',
          'connect() must be called in a cluster worker; in the primary, use startCluster()',
        ),
      );
      return;
    }
    // A worker of another cluster manager (PM2's cluster mode) would wait for a handshake that
    // never comes: clusterbus's primary forks its own workers.
    if (!forkedByClusterbus() && pm2ClusterMode()) {
      reject(new BusError('INVALID_ARGUMENT', `connect(): ${PM2_CLUSTER_MODE_HINT}`));
      return;
    }
    if (current !== undefined && !current.isClosed) {
      reject(
        new BusError(
          'INVALID_ARGUMENT',
          'connect(): this worker already has an open bus; close it first',
        ),
      );
      return;
    }
    const connectTimeoutMs = checkDurationMs(
      options.connectTimeoutMs ?? 10_000,
      'connectTimeoutMs',
    );
    const workerId = cluster.worker.id;
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(
        new BusError(
          'TIMEOUT',
          `connect(): the primary did not answer within ${connectTimeoutMs} ms`,
        ),
      );
      void bus.close();
    }, connectTimeoutMs);
    timer.unref();
    // The transport: a membership in which the primary is there from the start, with its link.
    const membership = clusterWorkerMembership(workerId);
    let link: Link | undefined;
    membership.onJoined((id, joined) => {
      if (id === HUB_ID) link = joined;
    });
    if (link === undefined) throw new BusError('PROTOCOL', 'connect(): no link to the primary');
    const bus: WorkerBus<C> = workerBus(contract, link, workerId, options, (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error === undefined) {
        resolve(bus);
        return;
      }
      reject(error);
      void bus.close();
    });
    current = bus as unknown as WorkerBus<Contract>;
    if (options.signals !== false) void bus.closed.then(deferSignalsToPrimary(primarySignals()));
    void bus.closed.then(() => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(
        new BusError('CLOSED', 'connect(): the channel to the primary closed before the handshake'),
      );
    });
  });
}
