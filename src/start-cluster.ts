/**
 * The primary's composition root: `startCluster()` resolves the options, loads the initial config
 * and the stores' snapshot, builds the running cluster (the bus core and the supervisor),
 * installs the hub sides of the extensions (config, drain, health, the shared state), forks the
 * workers and waits for them. Nothing else names an extension on this side.
 *
 * @module
 */
import cluster from 'node:cluster';
import { configHub, loadInitialConfig } from './config/extension.js';
import type { Contract } from './contract.js';
import { NODE_ENV } from './core/mesh.js';
import { drainHub } from './drain/extension.js';
import { BusError, toBusError } from './errors.js';
import { healthHub } from './health/extension.js';
import { scaleBounds } from './management/operations.js';
import { ManagementServer } from './management/server.js';
import { metricsHub } from './metrics/extension.js';
import { createMetricsScraper } from './metrics/scraper.js';
import { resolveMetricsOptions } from './metrics/types.js';
import { peersHub } from './peers/extension.js';
import { stateExtension } from './state/extension.js';
import { StoreHost } from './state/host.js';
import { ClusterApp } from './supervisor/cluster.js';
import { ClusterStatsLog } from './supervisor/cluster-stats.js';
import { PM2_CLUSTER_MODE_HINT, pm2ClusterMode } from './supervisor/env.js';
import { withEnvironment } from './supervisor/env-options.js';
import { resolveOptions, type StartClusterOptions } from './supervisor/options.js';
import { notifyReady } from './supervisor/ready-notify.js';
import { clusterPrimaryMembership } from './transport/cluster.js';
import { warn } from './util/warn.js';

/**
 * Starts a cluster in the primary: validates the initial config, forks `workers` workers into
 * slots 0..N-1 running `exec` (by default this same script, which should call {@link connect}
 * when `cluster.isPrimary` is false), and resolves once every one of them is ready. Then, unless
 * turned off: health pings, and the signal listeners.
 *
 * @returns the running {@link ClusterApp}: `app.bus`, `app.config`, `app.workers()`,
 *   `app.health()`, `app.restart()`, `app.scale()`, lifecycle events, `app.close()`.
 * Options the code leaves unset are read from `--workers N` and the environment (`readEnv`,
 * docs/operating.md). Each worker's stderr goes through the primary (forwarded to its stderr,
 * the last lines kept to explain a failed start); its stdout is inherited, unless `logs` is
 * `'prefix'` or `'json'` (then every line of both is labelled). Once every worker is ready, the
 * primary sends `'ready'` on its IPC channel if it has one (PM2's `wait_ready`) and runs
 * `systemd-notify --ready` if `NOTIFY_SOCKET` is set (a failure is a warning).
 *
 * @throws never synchronously; rejects with {@link BusError} `INVALID_ARGUMENT` when called outside
 *   the primary (under PM2's cluster mode, saying to use fork mode) or with a bad option (a bad
 *   environment variable or `--workers`: the message names it and the value it got; `workers`
 *   outside `minWorkers..maxWorkers`; a management host that is not loopback without a token),
 *   `VALIDATION` when the initial config fails the contract's config schema (no worker is
 *   forked), `STARTUP_FAILED` at once when a slot's worker exits before it is ready twice in a
 *   row with the same cause (same exit code or signal, same last stderr line), or once with
 *   `restart: false` or at the restart limit: `data` is `{ slot, workerId, exitCode, signal,
 *   stderr }` (`stderr`: its last 20 lines, at most 4 KiB), the message names them; `TIMEOUT` when
 *   the workers are not ready within `readyTimeoutMs` (the message says, per worker, whether it
 *   never connected or connected with `manualReady` and never called `bus.ready()`); `PERSIST_FAILED`
 *   when `persist.file` exists but cannot be read, or its directory cannot be written (no worker
 *   is forked); `INVALID_ARGUMENT` too when `management` is bad, binds a non-loopback host
 *   without a token, or cannot listen (no worker is forked). After a rejection, every forked
 *   worker has been ended.
 * @category Lifecycle
 */
export async function startCluster<C extends Contract>(
  given: StartClusterOptions<C>,
): Promise<ClusterApp<C>> {
  if (!cluster.isPrimary) {
    throw new BusError(
      'INVALID_ARGUMENT',
      pm2ClusterMode()
        ? `startCluster() must be called in the primary, and ${PM2_CLUSTER_MODE_HINT}`
        : 'startCluster() must be called in the primary; in a worker, use connect()',
    );
  }
  // Code, then `--workers`, then the environment, then the defaults (readEnv: false: code only).
  let options = withEnvironment(given);
  const mesh = options.mesh;
  if (mesh !== undefined) {
    // Its workers learn the node's name from their environment (bus.node).
    options = { ...options, env: { ...options.env, [NODE_ENV]: mesh.node } };
  }
  const resolved = resolveOptions(options as unknown as StartClusterOptions<Contract>);
  const metrics = resolveMetricsOptions(options.metrics);
  const initial = await loadInitialConfig(options.contract, options.config, options.configFile);
  const app = new ClusterApp(options, resolved, clusterPrimaryMembership(), (app) => ({
    config: app.bus.install(
      configHub(
        options.contract,
        {
          targets: () => app.readyTargets(),
          closing: () => app.isClosing,
          updated: (result) => app.emit('config:update', result),
          error: (error) => app.emit('config:error', { error, source: 'catch-up' }),
          ackTimeoutMs: resolved.configAckTimeoutMs,
          configFile: options.configFile,
        },
        initial,
      ),
    ),
    drain: app.bus.install(drainHub()),
    monitor:
      resolved.health === undefined
        ? undefined
        : app.bus.install(
            healthHub(resolved.health, {
              unhealthy: (workerId, reason, detail) => app.onUnhealthy(workerId, reason, detail),
              report: (report) => app.emit('worker:health', report),
              error: (error) => app.fail(error),
            }),
          ),
  }));
  app.bus.install(metricsHub(metrics, app, app.bus));
  try {
    if (mesh !== undefined) {
      const running = await mesh.start(options.contract, (error) => app.bus.emit('error', error));
      app.meshNode = running;
      running.attach(app.bus.joinMesh(running.routes));
      if (running.config !== undefined) await app.config.joinMesh(running.config, mesh.node);
    }
    const meshHost = app.meshNode?.stateHost;
    if (meshHost !== undefined) {
      app.bus.install(stateExtension(options.contract, { host: meshHost }));
    } else {
      app.storeHost = await StoreHost.load(options.contract, {
        ...options.store,
        persist: options.persist,
        maxDepth: options.maxDepth,
        maxPayloadBytes: options.maxPayloadBytes,
        report: (error) => app.bus.emit('error', error),
        observe: (store, op) => app.bus.observer.storeOp(store, op),
      });
      app.bus.install(stateExtension(options.contract, { host: app.storeHost }));
    }
    app.bus.install(
      peersHub((id) => {
        const record = app.slots.records.get(id);
        const pid = record?.worker.process.pid;
        return record?.state === 'ready' && pid !== undefined
          ? { slot: record.slot.index, pid }
          : undefined;
      }),
    );
    if (resolved.management !== undefined) {
      // Listening before the first fork: its counters see every worker.
      const scraper = createMetricsScraper(app);
      const server = await ManagementServer.start(
        app as unknown as ClusterApp<Contract>,
        resolved.management,
        {
          bounds: () => scaleBounds(resolved, options),
          metrics: () => scraper.scrape(),
        },
      );
      app.managementInfo = Object.freeze({ url: server.url, host: server.host, port: server.port });
      app.closers.push(() => {
        scraper.close();
        return server.close();
      });
    }
  } catch (error) {
    await app.close({ timeoutMs: 1_000 }); // nothing forked yet
    throw error;
  }
  const stats =
    resolved.logClusterStatsMs === undefined ? undefined : new ClusterStatsLog(app, resolved.logs);
  for (let i = 0; i < resolved.workers; i++) app.slots.addSlot();
  try {
    await app.waitAllReady(resolved.readyTimeoutMs);
  } catch (error) {
    // The startup failure is what to throw; a last snapshot that failed too is still told.
    await app.close({ timeoutMs: 1_000 }).catch((closing: unknown) => {
      const e = toBusError(closing, 'PERSIST_FAILED');
      warn(e);
    });
    throw error;
  }
  app.listenToSignals();
  if (stats !== undefined && resolved.logClusterStatsMs !== undefined) {
    stats.start(resolved.logClusterStatsMs);
  }
  // PM2's wait_ready and systemd's Type=notify: every worker is ready.
  void notifyReady();
  // Requests and events for the primary that arrived during startup run once the code after
  // `await startCluster()` has registered its handlers (see PrimaryBus.release).
  app.bus.release();
  return app;
}
