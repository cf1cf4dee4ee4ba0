/**
 * startCluster and the running cluster: the primary's bus, stable worker slots, crash restarts
 * with backoff, health checks, config updates, rolling restarts, scaling, signals and graceful
 * shutdown. The protocols live in their modules (slots, rolling, drain, signals, health, config);
 * this one wires them together.
 *
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import type { ClusterConfig } from '../config/extension.js';
import type { Contract } from '../contract.js';
import type { DrainHub } from '../drain/extension.js';
import { BusError, toBusError } from '../errors.js';
import type { HealthMonitor } from '../health/extension.js';
import type { ClusterHealth, UnhealthyReason } from '../health/types.js';
import type { ManagementInfo } from '../management/types.js';
import { metricsOf } from '../metrics/extension.js';
import { type PrimaryBus, primaryBus } from '../primary-bus.js';
import type { StoreHost } from '../state/host.js';
import { checkCount } from '../util/count.js';
import { checkDurationMs } from '../util/duration.js';
import type { ClusterEvents, RestartResult, ScaleResult, WorkerInfo } from './events.js';
import { checkScaleBounds } from './ops-options.js';
import {
  type CloseOptions,
  primaryBusOptions,
  type ResolvedOptions,
  type RestartOptions,
  type StartClusterOptions,
} from './options.js';
import { type OperationTimeouts, rollingRestart, scaleTo } from './rolling.js';
import { installSignals } from './signals.js';
import { Slots } from './slots.js';
import { waitAllReady } from './startup.js';
import { healthView, workersView } from './views.js';

export type {
  ClusterEvents,
  DrainReason,
  KillReason,
  ReplaceReason,
  RestartResult,
  ScaleResult,
  SlotRestart,
  WorkerExitEvent,
  WorkerInfo,
  WorkerReadyEvent,
} from './events.js';
export type {
  CloseOptions,
  RestartOptions,
  SignalOptions,
  StartClusterOptions,
} from './options.js';

import type { MeshView, RunningMesh } from '../core/mesh.js';
import type { ClusterMembership } from '../transport/cluster.js';

import { emitOrWarn, warn } from '../util/warn.js';

const NO_MESH: MeshView = { nodes: () => [] };

/** @internal The hub sides of the extensions the supervisor drives, as installed on its bus. */
export interface HubExtensions<C extends Contract> {
  readonly config: ClusterConfig<C>;
  readonly drain: DrainHub;
  /** Absent with `health: false`. */
  readonly monitor: HealthMonitor | undefined;
}

/**
 * A running cluster: the primary's bus, the workers in their slots, health, config, lifecycle
 * events. Made by {@link startCluster}.
 * @category Supervision
 */
export class ClusterApp<C extends Contract> extends EventEmitter<ClusterEvents, unknown> {
  /** The primary's bus. */
  readonly bus: PrimaryBus<C>;
  /** The cluster's config: `current`, `version`, `update(next)`, `reload()`. */
  readonly config: ClusterConfig<C>;
  /** @internal The shared stores' host, opened by {@link startCluster} before any fork. */
  storeHost: StoreHost | undefined;
  /** @internal The mesh this node is part of (`startCluster({ mesh })`), once joined. */
  meshNode: RunningMesh | undefined;
  /** The mesh: `nodes()` seen, their workers, when each was last heard. Without a mesh, none. */
  get mesh(): MeshView {
    return this.meshNode?.api ?? NO_MESH;
  }
  /** @internal */
  readonly slots: Slots;
  /** @internal Set by {@link startCluster} once the management API listens. */
  managementInfo: ManagementInfo | undefined;
  /** @internal Run first by `close()` (the management server stops taking requests). */
  readonly closers: (() => Promise<void>)[] = [];
  private readonly monitor: HealthMonitor | undefined;
  private readonly drain: DrainHub;
  private closing: Promise<void> | undefined;
  /** Rolling restarts and scaling, one at a time. */
  private ops: Promise<unknown> = Promise.resolve();
  private restarting: Promise<RestartResult> | undefined;
  private removeSignals: () => void = () => {};

  /**
   * @internal Made by {@link startCluster}, which names the transport and the extensions:
   * `membership` hands the bus the link of each worker the slots fork; `installHub` installs the hub sides the
   * supervisor drives (config, drain, health) on `app.bus` and returns them.
   */
  constructor(
    options: StartClusterOptions<C>,
    private readonly resolved: ResolvedOptions,
    private readonly membership: ClusterMembership,
    installHub: (app: ClusterApp<C>) => HubExtensions<C>,
  ) {
    super();
    this.bus = primaryBus(options.contract, primaryBusOptions(options), {
      connected: (workerId, pid) => this.slots.onReady(workerId, pid),
      welcome: (workerId) => this.welcome(workerId),
      resolveSlot: (slot) => this.slots.resolve(slot),
      refused: (workerId) => this.slots.onHello(workerId, false),
    });
    this.bus.on('error', (error) => this.forwardBusError(error));
    this.bus.join(membership);
    const hub = installHub(this);
    this.config = hub.config;
    this.drain = hub.drain;
    this.monitor = hub.monitor;
    this.slots = new Slots(membership, this.drain, options, resolved, this, {
      ready: (record) => {
        this.monitor?.watch(record.id);
        this.config.catchUp({ workerId: record.id, slot: record.slot.index });
      },
      retire: (record) => this.monitor?.unwatch(record.id),
      gone: (record) => this.monitor?.forget(record.id),
    });
  }

  /**
   * The management API (option `management`) once listening: its `url` (e.g.
   * `http://127.0.0.1:9000/`), `host` and `port`; undefined when it is off.
   */
  get management(): ManagementInfo | undefined {
    return this.managementInfo;
  }

  /** @internal The workers a config update goes to: the ready ones, by id and slot. */
  readyTargets(): { readonly workerId: number; readonly slot: number }[] {
    return [...this.slots.records.values()]
      .filter((r) => r.state === 'ready')
      .map((r) => ({ workerId: r.id, slot: r.slot.index }));
  }

  /** @internal Whether `close()` has begun. */
  get isClosing(): boolean {
    return this.closing !== undefined;
  }

  /** The live workers, ascending by slot, then by id (a replacement after the one it replaces). */
  workers(): WorkerInfo[] {
    return workersView(this.slots, new Set(this.bus.connectedWorkers()));
  }

  /**
   * The latest health report of every live worker, with the primary's own view of it (`misses`,
   * `overMemory`, `lastSeenAt`) and its `state`. Reports arrive every `health.intervalMs`; a
   * worker not yet pinged has `report: undefined`.
   */
  health(): ClusterHealth {
    return healthView(this.slots, this.monitor);
  }

  /**
   * The cluster's metrics in Prometheus's text format: the bus's own by slot, and the app's
   * prom-client metrics of every ready worker (docs/metrics.md). A worker that does not answer
   * within `metrics.collectTimeoutMs` is left out and counted.
   * @throws never synchronously; rejects with {@link BusError} `NOT_INSTALLED` when prom-client
   *   is not installed, `CLOSED` once the cluster is closed.
   */
  metrics(): Promise<string> {
    return metricsOf(this.bus).text();
  }

  /**
   * Rolling restart: for each slot in order, forks a new worker, waits until it is ready, then
   * drains the old one (it stops accepting connections, finishes its requests and calls, exits;
   * killed after `drainTimeoutMs`), before moving to the next slot. No slot is ever without a
   * ready worker, so no request needs to fail. A call while one is running returns the same
   * promise. The restart signal (SIGUSR2 by default, see `signals`) does this.
   *
   * @param options - `readyTimeoutMs`, `drainTimeoutMs` (default: the cluster's).
   * @returns `{ replaced: [{ slot, from, to }], durationMs }`; also emitted as `restart:done`.
   * @throws never synchronously; rejects with {@link BusError} `TIMEOUT` (a new worker was not
   *   ready in time: the restart stops there, that slot's old worker keeps serving),
   *   `TARGET_EXITED` (a new worker exited before it was ready), `CLOSED`, `INVALID_ARGUMENT`.
   */
  restart(options: RestartOptions = {}): Promise<RestartResult> {
    if (this.restarting !== undefined) return this.restarting;
    let timeouts: OperationTimeouts;
    try {
      timeouts = this.timeouts(options, 'restart');
    } catch (error) {
      return Promise.reject(error);
    }
    const run = this.enqueue(() => rollingRestart(this.slots, timeouts)).then((result) => {
      this.emit('restart:done', result);
      return result;
    });
    this.restarting = run;
    const clear = () => {
      if (this.restarting === run) this.restarting = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  /**
   * Grows the cluster to `count` slots (forks the new workers and waits until they are ready)
   * or shrinks it (drains the workers of the highest slots, then removes those slots). Waits for
   * a rolling restart in progress.
   *
   * @param count - the number of slots, >= 1, within `minWorkers..maxWorkers`.
   * @param options - `readyTimeoutMs`, `drainTimeoutMs` (default: the cluster's).
   * @returns `{ from, to }`; also emitted as `scale:done`.
   * @throws never synchronously; rejects with {@link BusError} `INVALID_ARGUMENT` for a bad
   *   count, or one outside `minWorkers..maxWorkers` (`data`: `{ min, max, requested }`, `max`
   *   null without a bound; nothing changes), `TIMEOUT` when a new worker is not ready in time
   *   (its slot stays, and keeps its worker), `CLOSED`.
   */
  scale(count: number, options: RestartOptions = {}): Promise<ScaleResult> {
    let timeouts: OperationTimeouts;
    try {
      checkCount(count, 'scale: count', 1);
      checkScaleBounds(count, this.resolved);
      timeouts = this.timeouts(options, 'scale');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.enqueue(() => scaleTo(this.slots, count, timeouts)).then((result) => {
      this.emit('scale:done', result);
      return result;
    });
  }

  private timeouts(options: RestartOptions, what: string): OperationTimeouts {
    if (this.closing !== undefined) throw new BusError('CLOSED', `${what}: the cluster is closing`);
    return {
      readyTimeoutMs: checkDurationMs(
        options.readyTimeoutMs ?? this.resolved.readyTimeoutMs,
        'readyTimeoutMs',
      ),
      drainTimeoutMs: checkDurationMs(
        options.drainTimeoutMs ?? this.resolved.drainTimeoutMs,
        'drainTimeoutMs',
      ),
    };
  }

  private enqueue<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.ops.then(operation);
    this.ops = run.catch(() => {});
    return run;
  }

  private welcome(workerId: number) {
    this.slots.onHello(workerId, true);
    return { slot: this.slots.records.get(workerId)?.slot.index };
  }

  /** @internal The health monitor declared worker `workerId` unhealthy: replace it. */
  onUnhealthy(workerId: number, reason: UnhealthyReason, detail: string): void {
    const record = this.slots.records.get(workerId);
    if (record === undefined || record.state !== 'ready') return;
    this.emit('worker:unhealthy', { workerId, slot: record.slot.index, reason, detail });
    this.drain.setDraining(workerId, true);
    if (this.closing !== undefined) return;
    if (record.slot.current !== record) {
      this.slots.killAsCrash(record);
      return;
    }
    const timeouts = {
      readyTimeoutMs: this.resolved.readyTimeoutMs,
      drainTimeoutMs: this.resolved.drainTimeoutMs,
    };
    this.slots.replace(record.slot, reason, timeouts, record).then(
      (outcome) => {
        // Already replaced by someone else and still running undrained: end it as a crash.
        if (outcome === undefined && record.draining === undefined) this.slots.killAsCrash(record);
      },
      (error: unknown) => {
        if (this.closing !== undefined) return;
        this.fail(
          new BusError(
            'REPLACEMENT_FAILED',
            `no replacement could be started for unhealthy worker ${workerId}: ${toBusError(error, 'PROTOCOL').message}`,
            { cause: error },
          ),
        );
        // No replacement could be started: the unhealthy worker is restarted as a crash would be.
        if (record.draining === undefined) this.slots.killAsCrash(record);
      },
    );
  }

  /** @internal Reports a supervision failure on the app's `error` event (or as a warning). */
  fail(error: BusError): void {
    emitOrWarn(this, error);
  }

  /** A bus error, re-emitted on the app; handled already if the user listens on `app.bus`. */
  private forwardBusError(error: BusError): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    // This forwarding listener is one; a second one on `app.bus` is the user's.
    else if (this.bus.listenerCount('error') <= 1) warn(error);
  }

  /**
   * @internal Resolves once every slot's worker is ready; rejects with `STARTUP_FAILED` when
   * workers keep exiting before they are ready, `TIMEOUT` at `timeoutMs`.
   */
  waitAllReady(timeoutMs: number): Promise<void> {
    return waitAllReady(this, this.slots, timeoutMs);
  }

  /** @internal Installs the signal listeners of the `signals` option. */
  listenToSignals(): void {
    const signals = this.resolved.signals;
    if (signals === undefined) return;
    this.removeSignals = installSignals(signals, {
      close: () => this.close({ timeoutMs: this.resolved.drainTimeoutMs }),
      restart: () => this.restart(),
      reload: () => this.config.reload(),
      signal: (signal, action) => this.emit('signal', { signal, action }),
      failed: (error, action) => {
        if (this.closing !== undefined) return; // a restart cut short by the close: expected
        const e = toBusError(error, 'INVALID_ARGUMENT');
        if (action === 'reload') this.emit('config:error', { error: e, source: 'reload' });
        else this.fail(e);
      },
    });
  }

  /**
   * Shuts the cluster down gracefully: no more restarts, pings or replacements; every worker is
   * drained at once (it stops accepting connections, finishes its in-flight requests and calls,
   * then exits); workers still alive after `timeoutMs` are killed with SIGKILL; then the stores
   * and the primary's bus close. Every pending call settles (its result, `TARGET_EXITED` or
   * `CLOSED`). The signal listeners are removed. Idempotent.
   *
   * @param options - `timeoutMs` (default 10_000 ms).
   * @throws never synchronously; rejects with `INVALID_ARGUMENT` for a bad `timeoutMs`, and with
   *   `PERSIST_FAILED` (with `persist`) when the last snapshot cannot be written: the changes since
   *   the snapshot before are not on disk. Even then, everything is closed first (no worker left,
   *   the bus closed, `close` emitted).
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    let timeoutMs: number;
    try {
      timeoutMs = checkDurationMs(options.timeoutMs ?? 10_000, 'timeoutMs');
    } catch (error) {
      return Promise.reject(error);
    }
    this.closing = (async () => {
      this.removeSignals();
      // Started first (the management API takes no new request), awaited with the rest.
      const closers = Promise.allSettled(this.closers.map((close) => close()));
      this.slots.stopping.abort();
      this.monitor?.stop();
      this.slots.cancelTimers();
      const records = [...this.slots.records.values()];
      // A drain already under way may have a later deadline: the close's own one governs.
      const killer = setTimeout(() => {
        for (const r of this.slots.records.values()) this.slots.kill(r, 'close-timeout');
      }, timeoutMs);
      await Promise.all(records.map((r) => this.slots.drain(r, 'close', timeoutMs)));
      clearTimeout(killer);
      await closers;
      // A last snapshot that cannot be written rejects the close, once everything is closed.
      const persistError = await this.storeHost?.close().then(
        () => undefined,
        (error: unknown) => error,
      );
      const meshError = await this.meshNode?.close().then(
        () => undefined,
        (error: unknown) => error,
      );
      await this.bus.close();
      this.membership.close();
      if (meshError !== undefined) warn(toBusError(meshError, 'CLOSED'));
      this.emit('close');
      this.removeAllListeners();
      if (persistError !== undefined) throw persistError;
    })();
    return this.closing;
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
