/**
 * The lifecycle events of a cluster (`app.on(...)`): every supervision decision is one, with its
 * reason.
 *
 * @module
 */
import type { ConfigUpdateResult } from '../config/types.js';
import type { BusError } from '../errors.js';
import type { HealthReport, UnhealthyReason, WorkerState } from '../health/types.js';

/** Why a worker is replaced by a new one in its slot. @category Supervision */
export type ReplaceReason = UnhealthyReason | 'restart';

/**
 * Why a worker is drained: replaced (`missed-pings`, `memory`, `restart`), its slot removed
 * (`scale`), the cluster closing (`close`), or a replacement that never became ready
 * (`not-ready`).
 * @category Supervision
 */
export type DrainReason = ReplaceReason | 'scale' | 'close' | 'not-ready';

/**
 * Why a worker is killed with SIGKILL: it did not exit within `drainTimeoutMs` of being drained
 * (`drain-timeout`), within `close({ timeoutMs })` (`close-timeout`), or it was judged unhealthy
 * and could not be replaced, so it is killed and restarted as a crash (`unhealthy`).
 * @category Supervision
 */
export type KillReason = 'drain-timeout' | 'close-timeout' | 'unhealthy';

/** The payload of `worker:exit`. @category Supervision */
export interface WorkerExitEvent {
  /** Node's worker id of the worker that exited. */
  readonly workerId: number;
  /** Its slot. */
  readonly slot: number;
  /** Its process id. */
  readonly pid: number | undefined;
  /** The exit code, or null when killed by a signal. */
  readonly code: number | null;
  /** The signal that killed it (e.g. `'SIGKILL'`), or null. */
  readonly signal: string | null;
  /** True when the primary asked it to exit (drain, close, disconnect); false for a crash. */
  readonly planned: boolean;
  /** The worker id of its replacement, when one was forked at once (a first crash). */
  readonly replacedBy: number | undefined;
}

/** The payload of `worker:ready`. @category Supervision */
export interface WorkerReadyEvent {
  /** Node's worker id. */
  readonly workerId: number;
  /** Its slot. */
  readonly slot: number;
  /** Its process id. */
  readonly pid: number;
  /** From fork to ready, in ms. */
  readonly startMs: number;
}

/** One slot's change in a rolling restart. @category Supervision */
export interface SlotRestart {
  /** The slot. */
  readonly slot: number;
  /** The worker that was replaced (undefined for a slot that had none). */
  readonly from: number | undefined;
  /** Its replacement. */
  readonly to: number;
}

/** What `app.restart()` resolves with (and `restart:done` carries). @category Supervision */
export interface RestartResult {
  /** One entry per slot, in slot order. */
  readonly replaced: readonly SlotRestart[];
  /** From the start of the restart to the last old worker's exit, in ms. */
  readonly durationMs: number;
}

/** What `app.scale()` resolves with (and `scale:done` carries). @category Supervision */
export interface ScaleResult {
  /** Slots before. */
  readonly from: number;
  /** Slots after. */
  readonly to: number;
}

/** A worker as {@link ClusterApp.workers} lists it. @category Supervision */
export interface WorkerInfo {
  /** Node's worker id: a call target. */
  readonly id: number;
  /** Its stable slot (0..N-1): a call target as `{ slot }`. */
  readonly slot: number;
  /** Its process id (undefined only before the process has started). */
  readonly pid: number | undefined;
  /** Whether its bus is connected (and it is ready). */
  readonly connected: boolean;
  /** Where it is in its life. */
  readonly state: WorkerState;
}

/** Lifecycle events of a {@link ClusterApp}. @category Supervision */
export interface ClusterEvents {
  /** A worker was forked into a slot. */
  'worker:fork': (event: { readonly workerId: number; readonly slot: number }) => void;
  /** A worker's process is up (Node's `online`). */
  'worker:online': (event: {
    readonly workerId: number;
    readonly slot: number;
    readonly pid: number;
  }) => void;
  /**
   * A worker's bus completed its handshake and the worker is ready (`connect()` resolved there
   * and, with `connect(contract, { manualReady: true })`, it called `bus.ready()`). Emitted just
   * before `worker:ready`.
   */
  'worker:connected': (event: {
    readonly workerId: number;
    readonly slot: number;
    readonly pid: number;
  }) => void;
  /** A worker is ready: it is routed to and pinged. */
  'worker:ready': (event: WorkerReadyEvent) => void;
  /**
   * A worker exited. `planned` is true when the primary asked it to (drain, close), false for a
   * crash or an unrequested exit.
   */
  'worker:exit': (event: WorkerExitEvent) => void;
  /** A worker's health report arrived. */
  'worker:health': (report: HealthReport) => void;
  /** A worker missed `misses` consecutive pings, or stayed over `maxMemoryBytes`. */
  'worker:unhealthy': (event: {
    readonly workerId: number;
    readonly slot: number;
    readonly reason: UnhealthyReason;
    /** For humans, e.g. `missed 3 consecutive pings (interval 5000 ms); last seen 15012 ms ago`. */
    readonly detail: string;
  }) => void;
  /** A replacement was forked into a worker's slot; the old one is drained once it is ready. */
  'worker:replace': (event: {
    /** The worker being replaced (undefined for a slot that had none). */
    readonly workerId: number | undefined;
    readonly slot: number;
    readonly replacementId: number;
    readonly reason: ReplaceReason;
  }) => void;
  /** A worker is being drained: no new `'any'` calls; in-flight work finishes; then it exits. */
  'worker:drain': (event: {
    readonly workerId: number;
    readonly slot: number;
    readonly reason: DrainReason;
  }) => void;
  /** A worker is killed with SIGKILL. */
  'worker:kill': (event: {
    readonly workerId: number;
    readonly slot: number;
    readonly reason: KillReason;
  }) => void;
  /** A crashed worker's slot is restarted after `delayMs` (exponential backoff). */
  'worker:backoff': (event: {
    readonly slot: number;
    readonly delayMs: number;
    /** Restarts of this slot within `restartWindowMs`, this one included. */
    readonly restarts: number;
  }) => void;
  /**
   * A slot crashed again after `maxRestarts` restarts within `restartWindowMs`: it is not
   * restarted any more (until `app.restart()`).
   */
  'worker:restart-limit': (event: {
    readonly slot: number;
    readonly restarts: number;
    readonly windowMs: number;
  }) => void;
  /** A config update completed: the version and every worker's acknowledgement. */
  'config:update': (result: ConfigUpdateResult) => void;
  /** A config reload (SIGHUP) or a catch-up push to a late worker failed. */
  'config:error': (event: {
    readonly error: BusError;
    readonly source: 'reload' | 'catch-up';
  }) => void;
  /** A rolling restart finished. */
  'restart:done': (result: RestartResult) => void;
  /** `app.scale()` finished. */
  'scale:done': (result: ScaleResult) => void;
  /** The primary received a signal it handles (`signals: true`). */
  signal: (event: {
    readonly signal: NodeJS.Signals;
    readonly action: 'close' | 'reload' | 'restart';
  }) => void;
  /** `close()` finished: every worker has exited and the bus is closed. */
  close: () => void;
  /**
   * A problem with no caller to reject: a bus-level one (see the bus's `error` event), or a
   * background supervision step that failed (a SIGUSR2 restart, a replacement).
   */
  error: (error: BusError) => void;
}
