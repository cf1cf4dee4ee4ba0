/**
 * A worker's bus: one peer, the primary, which routes everything else.
 *
 * @module
 */
import cluster from 'node:cluster';
import type { Contract } from '../contract.js';
import { BusError } from '../errors.js';
import { encode } from '../protocol/codec.js';
import {
  type Encoded,
  type EventFrame,
  type GatherItem,
  Kind,
  PRIMARY_ID,
} from '../protocol/envelope.js';
import { type ControlFrame, type OutgoingRequest, Peer } from '../protocol/peer.js';
import { primaryLink } from '../transport/cluster.js';
import type { Link } from '../transport/link.js';
import {
  BaseBus,
  type BusOptions,
  checkTimeout,
  isSystemName,
  type ResolvedCallOptions,
} from './base.js';
import type { Origin, Target } from './types.js';

/** Options of {@link connect}. */
export interface ConnectOptions extends BusOptions {
  /**
   * Reject with `TIMEOUT` if the primary has not answered the handshake within this many ms.
   * @default 10_000
   */
  readonly connectTimeoutMs?: number;
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
  private readonly peer: Peer;
  private announceQueued = false;

  /** @internal Made by {@link connect}; `link` is the channel to the primary. */
  constructor(
    contract: C,
    link: Link,
    workerId: number,
    options: BusOptions,
    onWelcome: () => void,
  ) {
    super(contract, options);
    this.self = workerId;
    this.peer = new Peer(
      link,
      'the primary',
      {
        request: (peer, frame, call) =>
          this.serve(peer, frame.i, frame.m, frame, origin(frame.s), call),
        event: (_peer, frame) => this.deliver(frame.m, frame, origin(frame.s)),
        control: (_peer, frame: ControlFrame) => {
          if (frame.k !== Kind.welcome) return;
          onWelcome();
          // One macrotask later, the code after `await connect()` has registered its handlers.
          setImmediate(() => this.peer.send({ k: Kind.ready, m: [...this.handlers.keys()] }));
        },
        invalid: (_peer, reason) =>
          this.report(new BusError('PROTOCOL', `from the primary: ${reason}`)),
        closed: () => {
          this.closing = true;
          this.finishClose();
        },
      },
      'CLOSED',
    );
    this.peer.send({ k: Kind.hello, pid: process.pid });
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
    if (payload.p !== undefined) frame.p = payload.p;
    if (payload.q !== undefined) frame.q = payload.q;
    if (target !== 'primary') frame.t = target;
    return this.peer.request(frame, {
      to: target === 'any' ? 'any worker' : target === 'primary' ? 'the primary' : target,
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
          timeoutMs: Math.min(options.timeoutMs + GATHER_GRACE_MS, 2_147_483_647),
          signal: options.signal,
        },
      )
      .then((frame) => frame.a ?? []);
  }

  protected broadcast(topic: string, payload: Encoded): void {
    const frame: Omit<EventFrame, '$cb'> = { k: Kind.event, m: topic, s: this.self, ...payload };
    this.peer.send(frame);
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

function origin(source: number | undefined): Origin {
  return source === undefined || source === PRIMARY_ID ? 'primary' : source;
}

let current: WorkerBus<Contract> | undefined;

/**
 * Connects this cluster worker to the primary's bus and resolves once the primary has answered.
 * Call it once per worker process, early (messages the primary sends before it are not seen).
 *
 * @param contract - the same contract the primary was started with.
 * @param options - `callTimeoutMs` (default 30_000 ms), `connectTimeoutMs` (default 10_000 ms).
 * @returns the worker's {@link WorkerBus}.
 * @throws never synchronously; rejects with {@link BusError} `INVALID_ARGUMENT` outside a cluster
 *   worker or when this process already has an open bus, `TIMEOUT` when the primary does not
 *   answer within `connectTimeoutMs`, `CLOSED` when the channel closes first.
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
    if (current !== undefined && !current.isClosed) {
      reject(
        new BusError(
          'INVALID_ARGUMENT',
          'connect(): this worker already has an open bus; close it first',
        ),
      );
      return;
    }
    const connectTimeoutMs = checkTimeout(options.connectTimeoutMs ?? 10_000, 'connectTimeoutMs');
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
    const bus: WorkerBus<C> = new WorkerBus(contract, primaryLink(), workerId, options, () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(bus);
    });
    current = bus as unknown as WorkerBus<Contract>;
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
