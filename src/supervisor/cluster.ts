/**
 * startCluster: forks the workers, connects the primary's bus to each, replaces crashed workers,
 * and shuts the whole cluster down gracefully. The only module besides the transport that
 * touches `node:cluster`.
 *
 * @module
 */
import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import { EventEmitter } from 'eventemitter3';
import { checkTimeout } from '../bus/base.js';
import { PrimaryBus } from '../bus/primary.js';
import type { Contract } from '../contract.js';
import { BusError } from '../errors.js';

/** Options of {@link startCluster}. */
export interface StartClusterOptions<C extends Contract> {
  /** The contract every worker connects with. */
  readonly contract: C;
  /**
   * How many workers to fork.
   * @default os.availableParallelism()
   */
  readonly workers?: number;
  /** The worker script (as `cluster.setupPrimary({ exec })`). @default process.argv[1], this script */
  readonly exec?: string;
  /** Arguments passed to each worker. @default process.argv.slice(2) */
  readonly args?: readonly string[];
  /** Node options of each worker (e.g. `['--import', 'tsx']`). @default process.execArgv */
  readonly execArgv?: readonly string[];
  /** Extra environment variables of each worker, on top of `process.env`. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Reject with `TIMEOUT` if the workers have not all connected (`connect()` resolved) within
   * this many ms; the forked workers are killed.
   * @default 30_000
   */
  readonly readyTimeoutMs?: number;
  /**
   * Default `timeoutMs` of the primary's calls, in ms.
   * @default 30_000
   */
  readonly callTimeoutMs?: number;
  /**
   * Fork a replacement when a worker exits without being asked to (a crash, `process.exit()`).
   * @default true
   */
  readonly restart?: boolean;
  /**
   * At most this many replacements within {@link StartClusterOptions.restartWindowMs}; one more
   * stops replacing and emits `worker:restart-limit` (restart intensity, as in Erlang/OTP).
   * @default 10
   */
  readonly maxRestarts?: number;
  /** The window of `maxRestarts`, in ms. @default 60_000 */
  readonly restartWindowMs?: number;
}

/** Lifecycle events of a {@link ClusterApp}. */
export interface ClusterEvents {
  /** A worker was forked. */
  'worker:fork': (event: { readonly workerId: number }) => void;
  /** A worker's process is up (Node's `online`). */
  'worker:online': (event: { readonly workerId: number; readonly pid: number }) => void;
  /** A worker's bus completed its handshake (`connect()` resolved there). */
  'worker:connected': (event: { readonly workerId: number; readonly pid: number }) => void;
  /**
   * A worker exited. `planned` is true when the primary asked it to (close, disconnect, kill),
   * false for a crash or an unrequested exit; `replacedBy` is the id of its replacement, if any.
   */
  'worker:exit': (event: WorkerExitEvent) => void;
  /** More than `maxRestarts` replacements within `restartWindowMs`: replacing stopped. */
  'worker:restart-limit': (event: { readonly restarts: number; readonly windowMs: number }) => void;
  /** `close()` finished: every worker has exited and the bus is closed. */
  close: () => void;
  /** A bus-level problem with no caller to reject (see the bus's `error` event). */
  error: (error: BusError) => void;
}

/** The payload of `worker:exit`. */
export interface WorkerExitEvent {
  /** Node's worker id of the worker that exited. */
  readonly workerId: number;
  /** Its process id. */
  readonly pid: number | undefined;
  /** The exit code, or null when killed by a signal. */
  readonly code: number | null;
  /** The signal that killed it (e.g. `'SIGKILL'`), or null. */
  readonly signal: string | null;
  /** True when the primary asked it to exit (close, disconnect, kill); false for a crash. */
  readonly planned: boolean;
  /** The worker id of its replacement, when one was forked. */
  readonly replacedBy: number | undefined;
}

/** A worker as {@link ClusterApp.workers} lists it. */
export interface WorkerInfo {
  /** Node's worker id: a call target. */
  readonly id: number;
  /** Its process id (undefined only before the process has started). */
  readonly pid: number | undefined;
  /** Whether its bus is connected. */
  readonly connected: boolean;
}

/** Options of {@link ClusterApp.close}. */
export interface CloseOptions {
  /**
   * Workers still alive this many ms after being asked to disconnect are killed with SIGKILL.
   * @default 10_000
   */
  readonly timeoutMs?: number;
}

/**
 * A running cluster: the primary's bus, the workers, lifecycle events. Made by {@link startCluster}.
 */
export class ClusterApp<C extends Contract> extends EventEmitter<ClusterEvents, unknown> {
  /** The primary's bus. */
  readonly bus: PrimaryBus<C>;
  private readonly live = new Map<number, Worker>();
  private readonly restarts: number[] = [];
  private closing: Promise<void> | undefined;
  private restartLimited = false;

  /** @internal Made by {@link startCluster}. */
  constructor(private readonly options: StartClusterOptions<C>) {
    super();
    this.bus = new PrimaryBus(
      options.contract,
      options.callTimeoutMs === undefined ? {} : { callTimeoutMs: options.callTimeoutMs },
      { connected: (workerId, pid) => this.emit('worker:connected', { workerId, pid }) },
    );
    this.bus.on('error', (error) => {
      if (this.listenerCount('error') > 0) this.emit('error', error);
      else process.emitWarning(error.message, { type: 'BusWarning', code: error.code });
    });
  }

  /** The live workers, ascending by id. */
  workers(): WorkerInfo[] {
    const connected = new Set(this.bus.connectedWorkers());
    return [...this.live.values()]
      .map((w) => ({ id: w.id, pid: w.process.pid, connected: connected.has(w.id) }))
      .sort((a, b) => a.id - b.id);
  }

  /** @internal Forks one worker and attaches the bus to it. */
  fork(): Worker {
    const o = this.options;
    cluster.setupPrimary({
      ...(o.exec !== undefined ? { exec: o.exec } : {}),
      ...(o.args !== undefined ? { args: [...o.args] } : {}),
      ...(o.execArgv !== undefined ? { execArgv: [...o.execArgv] } : {}),
    });
    const worker = cluster.fork(o.env === undefined ? undefined : { ...o.env });
    this.live.set(worker.id, worker);
    this.bus.attach(worker);
    worker.on('online', () =>
      this.emit('worker:online', { workerId: worker.id, pid: worker.process.pid ?? -1 }),
    );
    worker.on('exit', (code: number | null, signal: string | null) =>
      this.onExit(worker, code, signal),
    );
    // A worker's 'error' (e.g. a failed send) must not crash the primary; the exit path reports it.
    worker.on('error', () => {});
    this.emit('worker:fork', { workerId: worker.id });
    return worker;
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    this.live.delete(worker.id);
    const planned = worker.exitedAfterDisconnect === true || this.closing !== undefined;
    let replacedBy: number | undefined;
    if (!planned && this.options.restart !== false && !this.restartLimited) {
      replacedBy = this.replace();
    }
    this.emit('worker:exit', {
      workerId: worker.id,
      pid: worker.process.pid,
      code,
      signal,
      planned,
      replacedBy,
    });
  }

  private replace(): number | undefined {
    const windowMs = this.options.restartWindowMs ?? 60_000;
    const max = this.options.maxRestarts ?? 10;
    const now = Date.now();
    while (this.restarts.length > 0 && this.restarts[0]! < now - windowMs) this.restarts.shift();
    if (this.restarts.length >= max) {
      this.restartLimited = true;
      this.emit('worker:restart-limit', { restarts: this.restarts.length, windowMs });
      return undefined;
    }
    this.restarts.push(now);
    return this.fork().id;
  }

  /** @internal Resolves once `count` workers are connected; rejects on timeout or restart limit. */
  waitConnected(count: number, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.bus.connectedWorkers().length >= count) done();
      };
      const onLimit = () =>
        done(
          new BusError(
            'CLOSED',
            'startCluster: workers kept exiting before they connected (restart limit reached)',
          ),
        );
      const timer = setTimeout(
        () =>
          done(
            new BusError(
              'TIMEOUT',
              `startCluster: ${count - this.bus.connectedWorkers().length} of ${count} workers did not connect within ${timeoutMs} ms (does the worker call connect()?)`,
            ),
          ),
        timeoutMs,
      );
      timer.unref();
      const done = (error?: BusError) => {
        clearTimeout(timer);
        this.off('worker:connected', check);
        this.off('worker:restart-limit', onLimit);
        if (error === undefined) resolve();
        else reject(error);
      };
      this.on('worker:connected', check);
      this.on('worker:restart-limit', onLimit);
      check();
    });
  }

  /**
   * Shuts the cluster down: no more replacements; every worker is asked to disconnect (Node's
   * `worker.disconnect()`: it closes its servers, waits for their connections to end, then its
   * IPC channel closes and it exits when nothing else keeps it alive); workers still alive after
   * `timeoutMs` are killed with SIGKILL; then the primary's bus closes. Every pending call settles
   * (its result, `TARGET_EXITED` or `CLOSED`). Idempotent; never rejects.
   *
   * @param options - `timeoutMs` (default 10_000 ms).
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    const timeoutMs = options.timeoutMs ?? 10_000;
    this.closing = (async () => {
      const workers = [...this.live.values()];
      const exits = workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) resolve();
            else w.once('exit', () => resolve());
          }),
      );
      for (const w of workers) {
        if (w.isConnected()) w.disconnect();
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const outcome = await Promise.race([Promise.all(exits), timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
        await Promise.all(exits);
      }
      await this.bus.close();
      this.emit('close');
      this.removeAllListeners();
    })();
    return this.closing;
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts a cluster in the primary: forks `workers` workers running `exec` (by default this same
 * script, which should call {@link connect} when `cluster.isPrimary` is false), and resolves once
 * every one of them has connected its bus.
 *
 * @returns the running {@link ClusterApp}: `app.bus`, `app.workers()`, lifecycle events,
 *   `app.close()`.
 * @throws never synchronously; rejects with {@link BusError} `INVALID_ARGUMENT` when called outside
 *   the primary or with a bad option, `TIMEOUT` when the workers do not connect within
 *   `readyTimeoutMs` (they are killed), `CLOSED` when they keep crashing before connecting.
 */
export async function startCluster<C extends Contract>(
  options: StartClusterOptions<C>,
): Promise<ClusterApp<C>> {
  if (!cluster.isPrimary) {
    throw new BusError(
      'INVALID_ARGUMENT',
      'startCluster() must be called in the primary; in a worker, use connect()',
    );
  }
  if (typeof options !== 'object' || options === null || typeof options.contract !== 'object') {
    throw new BusError(
      'INVALID_ARGUMENT',
      'startCluster: options.contract is required (made by defineContract)',
    );
  }
  const count = options.workers ?? os.availableParallelism();
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: workers must be a positive integer, got ${String(count)}`,
    );
  }
  const readyTimeoutMs = checkTimeout(options.readyTimeoutMs ?? 30_000, 'readyTimeoutMs');
  const app = new ClusterApp(options);
  for (let i = 0; i < count; i++) app.fork();
  try {
    await app.waitConnected(count, readyTimeoutMs);
  } catch (error) {
    await app.close({ timeoutMs: 1_000 });
    throw error;
  }
  return app;
}
