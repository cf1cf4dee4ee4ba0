/**
 * A worker's bus: one peer, the primary, which routes everything else.
 *
 * @module
 */
import cluster from 'node:cluster';
import { configWorker, type WorkerConfig } from '../config/extension.js';
import type { Contract } from '../contract.js';
import { HUB_ID, type PeerId, type Peers } from '../core/extension.js';
import type { Origin, Target } from '../core/types.js';
import { drainWorker, type WorkerDrain } from '../drain/extension.js';
import type { CloseOnDrainOptions, DrainableServer, DrainHandler } from '../drain/types.js';
import { BusError, toBusError } from '../errors.js';
import { type HealthChecks, healthWorker } from '../health/extension.js';
import { copyPayload, decode, encode } from '../protocol/codec.js';
import {
  type Encoded,
  type EventFrame,
  type GatherItem,
  Kind,
  PRIMARY_ID,
  type WelcomeFrame,
} from '../protocol/envelope.js';
import { fingerprint } from '../protocol/fingerprint.js';
import { type ControlFrame, type OutgoingRequest, Peer } from '../protocol/peer.js';
import { stateExtension } from '../state/extension.js';
import {
  forkedByClusterbus,
  PM2_CLUSTER_MODE_HINT,
  pm2ClusterMode,
  primarySignals,
} from '../supervisor/env.js';
import { deferSignalsToPrimary } from '../supervisor/signals.js';
import { primaryLink } from '../transport/cluster.js';
import type { Link } from '../transport/link.js';
import { checkDurationMs, MAX_TIMER_MS } from '../util/duration.js';
import { BaseBus, type BusOptions, isSystemName, type ResolvedCallOptions } from './base.js';

/** Options of {@link connect}. */
export interface ConnectOptions extends BusOptions {
  /**
   * Reject with `TIMEOUT` if the primary has not answered the handshake within this many ms.
   * @default 10_000
   */
  readonly connectTimeoutMs?: number;
  /**
   * Hold back this worker's readiness until it calls `bus.ready()` (e.g. after warming a cache):
   * until then the primary routes no call to it, and `startCluster`, rolling restarts and
   * replacements wait for it (up to their `readyTimeoutMs`).
   * @default false (ready once `connect()` resolved)
   */
  readonly manualReady?: boolean;
  /**
   * Leave the primary's signals to it while the bus is open: this worker ignores SIGINT, SIGTERM
   * and every other signal its clusterbus primary handles (by default SIGUSR2, and SIGHUP when
   * it has a `configFile`). A Ctrl-C, a group-wide SIGTERM or nodemon's SIGUSR2 reaches the
   * primary too, which drains or replaces the workers, so in-flight requests are not dropped and
   * no crash is counted. `false` keeps Node's default (exit at once).
   * @default true
   */
  readonly signals?: boolean;
}

/** Extra time a worker waits for a gather beyond its per-worker `timeoutMs`, in ms. */
const GATHER_GRACE_MS = 1_000;

/**
 * A worker's bus, made by {@link connect}: `handle`, `call`, `callAll`, `publish`, `subscribe`,
 * all routed through the primary.
 */
export class WorkerBus<C extends Contract> extends BaseBus<C> {
  /** This worker's id (Node's `cluster.worker.id`). */
  readonly self: number;
  /** Always `'worker'`. */
  readonly side = 'worker' as const;
  private readonly goneListeners = new Set<(id: PeerId) => void>();
  protected readonly peers: Peers = {
    ids: () => (this.peer.closed ? [] : [HUB_ID]),
    onGone: (listener) => {
      this.goneListeners.add(listener);
      return () => this.goneListeners.delete(listener);
    },
    inFlight: () => this.peer.pendingCount,
    setDraining: () => {},
  };
  /** The cluster's config as this worker runs it: `current` (typed), `version`, `onChange()`. */
  readonly config: WorkerConfig<C>;
  /** This worker's health checks: `addCheck(name, check)`. */
  readonly health: HealthChecks;
  private readonly peer: Peer;
  private announceQueued = false;
  private slotValue = 0;
  private readonly drainer: WorkerDrain;
  private readonly manualReady: boolean;
  private welcomed = false;
  private readyWanted = false;
  private readySent = false;

  /** @internal Made by {@link connect}; `link` is the channel to the primary. */
  constructor(
    contract: C,
    link: Link,
    workerId: number,
    options: ConnectOptions,
    onWelcome: (error?: BusError) => void,
  ) {
    super(contract, options);
    this.self = workerId;
    this.manualReady = options.manualReady === true;
    this.config = this.install(configWorker<C>(contract.config));
    this.health = this.install(
      healthWorker({
        workerId,
        slot: () => this.slotValue,
        inFlight: () => this.pendingCount,
        configVersion: () => this.config.version,
      }),
    );
    this.drainer = this.install(drainWorker(() => this.pendingCount));
    this.peer = new Peer(
      link,
      'the primary',
      {
        request: (peer, frame, call) => {
          if (isSystemName(frame.m) && frame.s !== undefined && frame.s !== PRIMARY_ID) {
            // The hub never routes one worker's system frames to another; refuse one anyway.
            const error = forged(`request '${frame.m}'`, frame.s);
            peer.fail(frame.i, error);
            this.report(error);
            return;
          }
          this.serve(peer, frame.i, frame.m, frame, origin(frame.s), call);
        },
        event: (_peer, frame) => {
          if (isSystemName(frame.m) && frame.s !== PRIMARY_ID) {
            this.report(forged(`event '${frame.m}'`, frame.s));
            return;
          }
          this.deliver(frame.m, frame, origin(frame.s));
        },
        control: (_peer, frame: ControlFrame) => {
          if (frame.k !== Kind.welcome) return;
          const error = this.welcome(frame);
          onWelcome(error);
          // One macrotask later, the code after `await connect()` has registered its handlers.
          if (error === undefined && (!this.manualReady || this.readyWanted)) {
            setImmediate(() => this.sendReady());
          }
        },
        invalid: (_peer, reason, code) =>
          this.report(new BusError(code ?? 'PROTOCOL', `from the primary: ${reason}`)),
        closed: () => {
          this.closing = true;
          for (const l of [...this.goneListeners]) l(HUB_ID);
          this.goneListeners.clear();
          this.finishClose();
        },
      },
      'CLOSED',
      this.flowLimits,
    );
    this.install(stateExtension(contract));
    const contractPrint = fingerprint(contract);
    this.peer.send({
      k: Kind.hello,
      pid: process.pid,
      h: contractPrint.hash,
      f: contractPrint.entries,
    });
  }

  /**
   * Reads the welcome: its extension map (the supervisor's slot, each extension's part, the
   * config's among them). Returns the error that fails `connect()`, if any.
   */
  private welcome(frame: WelcomeFrame): BusError | undefined {
    if (frame.e !== undefined) return BusError.fromJSON(frame.e);
    try {
      const decoded = frame.x === undefined ? undefined : decode(frame.x);
      const parts = (typeof decoded === 'object' && decoded !== null ? decoded : {}) as Record<
        string,
        unknown
      >;
      const slot = parts.slot;
      this.slotValue = Number.isSafeInteger(slot) && (slot as number) >= 0 ? (slot as number) : 0;
      for (const [name, installed] of this.extensions) {
        const error = installed.welcomed?.(Object.hasOwn(parts, name) ? parts[name] : undefined);
        if (error !== undefined) return error;
      }
    } catch (error) {
      return toBusError(error, 'PROTOCOL');
    }
    this.welcomed = true;
    return undefined;
  }

  private sendReady(): void {
    if (this.readySent || this.peer.closed) return;
    this.readySent = true;
    this.peer.send({ k: Kind.ready, m: [...this.handlers.keys()] });
  }

  /**
   * This worker's stable slot (0..N-1): its replacement (crash, rolling restart, unhealthy)
   * inherits it, unlike Node's ever-growing worker id. A call target as `{ slot }`. Set before
   * `connect()` resolves (0 for a bus not started by `startCluster`).
   */
  get slot(): number {
    return this.slotValue;
  }

  /**
   * Declares this worker ready, when it connected with `{ manualReady: true }`: from now on the
   * primary routes calls to it and pings it, and whoever waits for its readiness (startCluster,
   * a rolling restart, a replacement) goes on. Idempotent; without `manualReady` it does nothing
   * (the worker was ready once `connect()` resolved).
   */
  ready(): void {
    if (!this.manualReady) return;
    this.readyWanted = true;
    if (this.welcomed) this.sendReady();
  }

  /** Whether the primary has asked this worker to drain (it is being replaced or stopped). */
  get draining(): boolean {
    return this.drainer.draining;
  }

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
  onDrain(handler: DrainHandler): () => void {
    return this.drainer.onDrain(handler);
  }

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
  closeOnDrain(server: DrainableServer, options?: CloseOnDrainOptions): () => void {
    return this.drainer.closeOnDrain(server, options);
  }

  /** Calls and inbound requests not yet settled, for leak checks. */
  get pendingCount(): number {
    return this.peer.pendingCount + this.peer.inboundCount;
  }

  protected route(
    target: Target,
    method: string,
    payload: Encoded,
    options: ResolvedCallOptions,
  ): Promise<Encoded> {
    const frame: OutgoingRequest = { k: Kind.request, m: method };
    copyPayload(frame, payload);
    if (typeof target === 'object') frame.n = target.slot;
    else if (target !== 'primary') frame.t = target;
    return this.peer.request(frame, {
      to:
        typeof target === 'object'
          ? `the worker in slot ${target.slot}`
          : target === 'any'
            ? 'any worker'
            : target === 'primary'
              ? 'the primary'
              : target,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
    });
  }

  protected gather(
    method: string,
    payload: Encoded,
    options: ResolvedCallOptions,
  ): Promise<GatherItem[]> {
    return this.peer
      .request(
        { k: Kind.request, m: method, t: 'all', d: options.timeoutMs, ...payload },
        {
          what: 'callAll',
          to: 'every worker',
          timeoutMs: Math.min(options.timeoutMs + GATHER_GRACE_MS, MAX_TIMER_MS),
          signal: options.signal,
        },
      )
      .then((frame) => frame.a ?? []);
  }

  protected broadcast(topic: string, payload: Encoded): void {
    if (this.peer.overloaded) {
      throw new BusError(
        'OVERLOADED',
        `publish '${topic}': the primary is not keeping up (over maxQueueBytes waiting to be sent)`,
      );
    }
    const frame: Omit<EventFrame, '$cb'> = { k: Kind.event, m: topic, s: this.self, ...payload };
    this.peer.send(frame);
  }

  protected sendSystem(to: PeerId, topic: string, payload: unknown): boolean {
    return to === HUB_ID && this.systemSend(topic, payload);
  }

  /** @internal Sends system event `topic` (`$…`) to the primary. Returns false if disconnected. */
  systemSend(topic: string, payload: unknown): boolean {
    if (!isSystemName(topic)) return false;
    return this.peer.send({ k: Kind.event, m: topic, s: this.self, ...encode(payload) });
  }

  protected override handlersChanged(): void {
    if (this.announceQueued) return;
    this.announceQueued = true;
    queueMicrotask(() => {
      this.announceQueued = false;
      this.peer.send({ k: Kind.handlers, m: [...this.handlers.keys()] });
    });
  }

  /**
   * Closes this worker's bus: tells the primary, rejects pending calls with `CLOSED`, aborts
   * running handlers, removes every listener. The IPC channel stays open (Node's `cluster` owns
   * it); the worker exits when nothing else keeps it alive. Idempotent; resolves when closed.
   */
  close(): Promise<void> {
    if (!this.peer.closed) {
      this.peer.send({ k: Kind.bye });
      this.peer.close('CLOSED', 'the bus was closed');
    }
    return this.closed;
  }
}

/** A system frame that claims to come from a worker: only the primary drives system protocols. */
function forged(what: string, source: number | undefined): BusError {
  return new BusError(
    'FORBIDDEN',
    `${what} from worker ${source} refused: system protocols are the primary's`,
  );
}

function origin(source: number | undefined): Origin {
  return source === undefined || source === PRIMARY_ID ? 'primary' : source;
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
    const bus: WorkerBus<C> = new WorkerBus(contract, primaryLink(), workerId, options, (error) => {
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
