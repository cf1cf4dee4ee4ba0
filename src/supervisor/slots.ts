/**
 * Stable worker slots and what happens to the worker in each: fork, readiness, crash restarts
 * (with backoff and restart intensity), replacement (fork the new one, wait until it is ready,
 * then drain the old one), and draining. It forks, so it touches `node:cluster`, as only the
 * transport and the composition roots otherwise do.
 *
 * @module
 */
import cluster, { type Worker } from 'node:cluster';
import type { EventEmitter } from 'eventemitter3';
import type { Contract } from '../contract.js';
import type { DrainHub } from '../drain/extension.js';
import { BusError } from '../errors.js';
import type { ClusterMembership } from '../transport/cluster.js';
import { RestartWindow } from './backoff.js';
import { workerEnv } from './env.js';
import type {
  ClusterEvents,
  DrainReason,
  KillReason,
  ReplaceReason,
  SlotRestart,
} from './events.js';
import type { ResolvedOptions, StartClusterOptions } from './options.js';
import { handledSignals } from './signals.js';
import type { EarlyExit, Slot, SlotHooks, WorkerRecord } from './slot-types.js';
import { attachWorkerOutput, workerStdio } from './worker-logs.js';

export type { EarlyExit, HelloState, Slot, SlotHooks, WorkerRecord } from './slot-types.js';

/** @internal The slot table of one cluster. */
export class Slots {
  readonly slots: Slot[] = [];
  readonly records = new Map<number, WorkerRecord>();
  /** Aborted when the cluster starts closing: waits for readiness end with `CLOSED`. */
  readonly stopping = new AbortController();
  /** @internal Told of every {@link EarlyExit} (the startup listens). */
  readonly earlyExits = new Set<(exit: EarlyExit) => void>();

  constructor(
    /** Where a forked worker joins, with its link (the cluster transport). */
    private readonly members: ClusterMembership,
    private readonly drainer: DrainHub,
    private readonly options: StartClusterOptions<Contract>,
    private readonly resolved: ResolvedOptions,
    private readonly events: EventEmitter<ClusterEvents, unknown>,
    private readonly hooks: SlotHooks,
  ) {}

  get closing(): boolean {
    return this.stopping.signal.aborted;
  }

  /** Adds slot `index` (the next one) and forks its first worker. */
  addSlot(): Slot {
    const r = this.resolved;
    const slot: Slot = {
      index: this.slots.length,
      current: undefined,
      next: undefined,
      restarts: new RestartWindow({
        maxRestarts: r.maxRestarts,
        windowMs: r.restartWindowMs,
        initialMs: r.restartBackoffMs,
        maxMs: r.maxRestartBackoffMs,
      }),
      stopped: false,
      retired: false,
      timer: undefined,
      busy: Promise.resolve(),
    };
    this.slots.push(slot);
    slot.current = this.fork(slot);
    return slot;
  }

  /** The id of the worker serving slot `index`, for `{ slot }` targets. */
  resolve(index: number): number | undefined {
    const slot = this.slots[index];
    return (slot?.current ?? slot?.next)?.id;
  }

  /** Forks a worker into `slot` and attaches the bus to it. */
  fork(slot: Slot): WorkerRecord {
    const o = this.options;
    // stderr is piped for its tail; the setting is put back so a plain `cluster.fork()` elsewhere
    // in this process still inherits it.
    const stdio = cluster.settings.stdio;
    cluster.setupPrimary({
      ...(o.exec !== undefined ? { exec: o.exec } : {}),
      ...(o.args !== undefined ? { args: [...o.args] } : {}),
      ...(o.execArgv !== undefined ? { execArgv: [...o.execArgv] } : {}),
      stdio: [...workerStdio(this.resolved.logs)],
    });
    let worker: Worker;
    try {
      worker = cluster.fork({ ...o.env, ...workerEnv(handledSignals(this.resolved.signals)) });
    } finally {
      cluster.setupPrimary({ stdio });
    }
    this.members.add(worker);
    let markReady!: () => void;
    let markExited!: (error: BusError) => void;
    let resolveExited!: () => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      markExited = reject;
    });
    ready.catch(() => {});
    const exited = new Promise<void>((resolve) => {
      resolveExited = resolve;
    });
    const record: WorkerRecord = {
      worker,
      id: worker.id,
      slot,
      state: 'starting',
      planned: false,
      forkedAt: performance.now(),
      ready,
      exited,
      draining: undefined,
      killed: false,
      hello: 'none',
      stderr: attachWorkerOutput(worker, slot.index, this.resolved.logs),
      markReady,
      markExited: (error) => {
        markExited(error);
        resolveExited();
      },
    };
    this.records.set(worker.id, record);
    worker.on('online', () =>
      this.events.emit('worker:online', {
        workerId: worker.id,
        slot: slot.index,
        pid: worker.process.pid ?? -1,
      }),
    );
    worker.on('exit', (code: number | null, signal: string | null) =>
      this.onExit(record, code, signal),
    );
    // A worker's 'error' (e.g. a failed send) must not crash the primary; the exit path reports it.
    worker.on('error', () => {});
    this.events.emit('worker:fork', { workerId: worker.id, slot: slot.index });
    return record;
  }

  /** The bus reports a worker's hello, answered (`accepted`) or refused. */
  onHello(workerId: number, accepted: boolean): void {
    const record = this.records.get(workerId);
    if (record !== undefined) record.hello = accepted ? 'welcomed' : 'refused';
  }

  /** The bus reports a worker ready (its `ready` frame). */
  onReady(workerId: number, pid: number): void {
    const record = this.records.get(workerId);
    if (record === undefined || record.state !== 'starting') return;
    record.state = 'ready';
    const slot = record.slot.index;
    this.events.emit('worker:connected', { workerId, slot, pid });
    this.events.emit('worker:ready', {
      workerId,
      slot,
      pid,
      startMs: Math.round(performance.now() - record.forkedAt),
    });
    record.markReady();
    this.hooks.ready(record);
  }

  private onExit(record: WorkerRecord, code: number | null, signal: string | null): void {
    this.records.delete(record.id);
    // The kept tail is dropped once the pipe has closed; the startup may still want it.
    const stderr = record.stderr.end();
    const serving = record.slot.current === record && record.state === 'starting';
    record.markExited(
      new BusError(
        'TARGET_EXITED',
        `worker ${record.id} (slot ${record.slot.index}) exited before it was ready`,
      ),
    );
    this.hooks.gone(record);
    const slot = record.slot;
    if (slot.current === record) slot.current = undefined;
    if (slot.next === record) slot.next = undefined;
    const planned = record.planned || record.worker.exitedAfterDisconnect === true || this.closing;
    const replacedBy = planned ? undefined : this.restartAfterCrash(slot);
    if (serving && !planned) {
      const exit: EarlyExit = {
        slot: slot.index,
        workerId: record.id,
        code,
        signal,
        stderr,
        hello: record.hello,
        stop: !this.resolved.restart ? 'restart-off' : slot.stopped ? 'restart-limit' : undefined,
        restarts: slot.restarts.count(Date.now()),
        windowMs: this.resolved.restartWindowMs,
      };
      for (const listener of [...this.earlyExits]) listener(exit);
    }
    this.events.emit('worker:exit', {
      workerId: record.id,
      slot: slot.index,
      pid: record.worker.process.pid,
      code,
      signal,
      planned,
      replacedBy,
    });
  }

  /** Restarts a crashed worker's slot, at once or after a backoff. Returns the new id if at once. */
  private restartAfterCrash(slot: Slot): number | undefined {
    if (!this.resolved.restart || slot.retired || slot.stopped) return undefined;
    // A replacement is already starting, or the crashed one was the replacement: the slot has
    // (or will have) a worker without a fork here.
    if (slot.current !== undefined || slot.next !== undefined || slot.timer !== undefined) {
      return undefined;
    }
    const decision = slot.restarts.attempt(Date.now());
    if (!decision.restart) {
      slot.stopped = true;
      this.events.emit('worker:restart-limit', {
        slot: slot.index,
        restarts: decision.restarts,
        windowMs: this.resolved.restartWindowMs,
      });
      return undefined;
    }
    if (decision.delayMs === 0) {
      slot.current = this.fork(slot);
      return slot.current.id;
    }
    this.events.emit('worker:backoff', {
      slot: slot.index,
      delayMs: decision.delayMs,
      restarts: decision.restarts,
    });
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (this.closing || slot.retired || slot.current !== undefined || slot.next !== undefined) {
        return;
      }
      slot.current = this.fork(slot);
    }, decision.delayMs);
    return undefined;
  }

  /** Resolves when `record` is ready; rejects with `TIMEOUT`, `TARGET_EXITED` or `CLOSED`. */
  waitReady(record: WorkerRecord, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const signal = this.stopping.signal;
      const done = (error?: BusError) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onClose);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onClose = () => done(new BusError('CLOSED', 'the cluster is closing'));
      const timer = setTimeout(
        () =>
          done(
            new BusError(
              'TIMEOUT',
              `worker ${record.id} (slot ${record.slot.index}) was not ready within ${timeoutMs} ms`,
            ),
          ),
        timeoutMs,
      );
      if (signal.aborted) {
        onClose();
        return;
      }
      signal.addEventListener('abort', onClose, { once: true });
      record.ready.then(
        () => done(),
        (error: BusError) => done(error),
      );
    });
  }

  /**
   * Replaces the worker of `slot`: forks the new one, waits until it is ready, promotes it, then
   * drains the old one. One replacement per slot at a time. With `expected`, does nothing if that
   * worker is no longer the slot's (already replaced). Rejects with `TIMEOUT` (the new worker
   * was not ready in time; it is drained and the old one keeps serving), `TARGET_EXITED` (the new
   * worker exited first), `CLOSED`.
   */
  replace(
    slot: Slot,
    reason: ReplaceReason,
    timeouts: { readonly readyTimeoutMs: number; readonly drainTimeoutMs: number },
    expected?: WorkerRecord,
  ): Promise<SlotRestart | undefined> {
    const run = slot.busy.then(() => this.replaceNow(slot, reason, timeouts, expected));
    slot.busy = run.catch(() => {});
    return run;
  }

  private async replaceNow(
    slot: Slot,
    reason: ReplaceReason,
    timeouts: { readonly readyTimeoutMs: number; readonly drainTimeoutMs: number },
    expected: WorkerRecord | undefined,
  ): Promise<SlotRestart | undefined> {
    if (this.closing) throw new BusError('CLOSED', 'the cluster is closing');
    if (slot.retired) return undefined;
    const old = slot.current;
    if (expected !== undefined && old !== expected) return undefined;
    if (slot.timer !== undefined) {
      clearTimeout(slot.timer);
      slot.timer = undefined;
    }
    const next = this.fork(slot);
    slot.next = next;
    this.events.emit('worker:replace', {
      workerId: old?.id,
      slot: slot.index,
      replacementId: next.id,
      reason,
    });
    try {
      await this.waitReady(next, timeouts.readyTimeoutMs);
    } catch (error) {
      if (slot.next === next) slot.next = undefined;
      if (this.records.has(next.id)) void this.drain(next, 'not-ready', timeouts.drainTimeoutMs);
      throw error;
    }
    slot.next = undefined;
    slot.current = next;
    if (old !== undefined && this.records.has(old.id)) {
      await this.drain(old, reason, timeouts.drainTimeoutMs);
    }
    return { slot: slot.index, from: old?.id, to: next.id };
  }

  /** Drains a worker (see drain/hub.ts); resolves once it has exited. Idempotent per worker. */
  drain(record: WorkerRecord, reason: DrainReason, timeoutMs: number): Promise<void> {
    if (record.draining !== undefined) return record.draining;
    record.planned = true;
    record.state = 'draining';
    this.hooks.retire(record);
    this.events.emit('worker:drain', { workerId: record.id, slot: record.slot.index, reason });
    record.draining = this.drainer.drain(
      {
        worker: record.worker,
        exited: record.exited,
        kill: () => this.kill(record, reason === 'close' ? 'close-timeout' : 'drain-timeout'),
      },
      performance.now() + timeoutMs,
    );
    return record.draining;
  }

  /**
   * Kills a worker that could not be replaced as if it had crashed: its slot is restarted with
   * backoff and restart intensity.
   */
  killAsCrash(record: WorkerRecord): void {
    this.kill(record, 'unhealthy');
  }

  /** Kills a worker with SIGKILL and says why; once per worker. */
  kill(record: WorkerRecord, reason: KillReason): void {
    if (record.killed || record.worker.isDead()) return;
    record.killed = true;
    this.events.emit('worker:kill', { workerId: record.id, slot: record.slot.index, reason });
    record.worker.process.kill('SIGKILL');
  }

  /** Cancels every pending backoff restart (at close). */
  cancelTimers(): void {
    for (const slot of this.slots) {
      clearTimeout(slot.timer);
      slot.timer = undefined;
    }
  }
}
