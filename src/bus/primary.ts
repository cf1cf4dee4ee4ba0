/**
 * The primary's bus and the hub of the cluster: one peer per worker, and the routing between
 * them. Forwarded requests and events are passed on without decoding their payloads. The
 * routing is `hub-router.ts`, the handshake `hub-handshake.ts`; this class composes them.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import { HUB_ID, type PeerId, type Peers } from '../core/extension.js';
import type { LocalRoutes, MeshRoutes } from '../core/mesh.js';
import type { Target } from '../core/types.js';
import { BusError } from '../errors.js';
import { encode } from '../protocol/codec.js';
import { type Encoded, type GatherItem, Kind, PRIMARY_ID } from '../protocol/envelope.js';
import { Peer } from '../protocol/peer.js';
import type { Link } from '../transport/link.js';
import type { Membership } from '../transport/membership.js';
import { type BusOptions, isSystemName, type ResolvedCallOptions } from './base.js';
import { HubHandshake } from './hub-handshake.js';
import { meshLocalRoutes } from './hub-mesh.js';
import { HubRouter, type WorkerEntry } from './hub-router.js';
import { HubStreams } from './hub-streams.js';
import { SUBSCRIPTIONS_SYNC } from './hub-subscriptions.js';
import { LocalCalls } from './local-calls.js';
import { StreamingBus } from './streaming.js';
import type { StreamEndpoint } from './streams.js';

/** Events the primary's bus emits for the supervisor, besides {@link BusEvents}. */
export interface PrimaryBusHooks {
  /** A worker's bus completed its handshake. */
  connected(workerId: number, pid: number): void;
  /**
   * The supervisor's part of a worker's welcome, merged into the extension map (e.g.
   * `{ slot }`), besides what each installed extension adds.
   */
  welcome?(workerId: number): Readonly<Record<string, unknown>>;
  /** The id of the worker serving `slot`, for `{ slot }` targets; undefined if none. */
  resolveSlot?(slot: number): number | undefined;
  /** A worker's hello was refused (its contract differs): it said hello, and will not be ready. */
  refused?(workerId: number): void;
}

/**
 * The core of the primary's bus: the same `handle`, `call`, `callAll`, `publish`, `subscribe` as
 * a worker's, and the router every worker's messages go through. The app gets it as
 * `PrimaryBus` (`app.bus`), with the shared state's `store` and `lock` on it.
 * @category Buses
 */
export class PrimaryCore<C extends Contract> extends StreamingBus<C> {
  /** Always `'primary'`. */
  readonly self = 'primary' as const;
  /** Always `'hub'`. */
  readonly side = 'hub' as const;
  protected readonly peerView: Peers = {
    ids: () => this.connectedWorkers(),
    onGone: (listener) => this.onWorkerGone(listener),
    inFlight: (id) => this.inFlightTo(id),
    setDraining: (id, draining) => this.setDraining(id, draining),
  };
  /**
   * The workers, and the routing of their requests and events. What a worker sends the primary
   * itself waits in {@link held} while the cluster starts (a system protocol's never does).
   */
  private readonly router = new HubRouter(
    {
      report: (error) => this.report(error),
      resolveSlot: (slot) => this.hooks.resolveSlot?.(slot),
      serve: (peer, frame, from, call) => {
        if (this.held !== undefined && !isSystemName(frame.m)) {
          this.held.push(() => this.serve(peer, frame.i, frame.m, frame, from, call));
        } else {
          this.serve(peer, frame.i, frame.m, frame, from, call);
        }
      },
      deliver: (frame, from) => {
        if (this.held !== undefined && !isSystemName(frame.m)) {
          this.held.push(() => this.deliver(frame.m, frame, from));
        } else {
          this.deliver(frame.m, frame, from);
        }
      },
    },
    this.callTimeoutMs,
  );
  private readonly workers = this.router.workers;
  /** The streams of every worker link, the relays between workers, and the primary's own. */
  private readonly streams = new HubStreams({
    router: this.router,
    localLoop: this.localLoop,
    serve: (endpoint, frame, caller) => {
      const serve = () => this.serveStream(endpoint, frame, caller);
      this.held === undefined ? serve() : this.held.push(serve);
    },
    report: (error) => this.report(error),
  });
  /** Hello, welcome, ready, handlers, bye. */
  private readonly handshake: HubHandshake;
  /** The primary's calls to itself, and the signals of the handlers serving them. */
  private readonly local = new LocalCalls(this.localLoop, (responder, id, method, payload, c) =>
    this.serve(responder, id, method, payload, 'primary', c),
  );
  private readonly goneListeners = new Set<(workerId: number) => void>();
  /**
   * While the cluster starts: requests to the primary's own handlers and events for its
   * subscribers, in arrival order, run by {@link release}.
   */
  private held: Array<() => void> | undefined = [];

  /** @internal Made by `startCluster`. */
  constructor(
    contract: C,
    options: BusOptions,
    private readonly hooks: PrimaryBusHooks,
  ) {
    super(contract, options);
    this.handshake = new HubHandshake({
      contract,
      allowContractMismatch: options.allowContractMismatch === true,
      report: (error) => this.report(error),
      welcome: (id) => this.welcomeParts(id),
      refused: (id) => this.hooks.refused?.(id),
      connected: (id, pid) => this.hooks.connected(id, pid),
      renew: (entry) => this.makePeer(entry),
      gone: (id) => this.workerGone(id),
    });
    this.systemHandle(SUBSCRIPTIONS_SYNC, () => undefined);
  }

  /** Ids of the workers whose bus is connected, ascending. */
  connectedWorkers(): number[] {
    return this.router.connectedWorkers();
  }

  /** Calls and inbound requests not yet settled, over every link, for leak checks. */
  get pendingCount(): number {
    let n = this.local.size + this.streams.size;
    for (const w of this.workers.values()) n += w.peer.pendingCount + w.peer.inboundCount;
    return n;
  }

  /** @internal About how many bytes wait in the outbound queues to every worker. */
  get queuedBytes(): number {
    let n = 0;
    for (const w of this.workers.values()) n += w.peer.queuedBytes;
    return n;
  }

  /**
   * @internal Takes every peer that joins `membership` as a worker, with its link (the
   * composition root's transport). Returns the function that stops taking them.
   */
  join(membership: Membership): () => void {
    return membership.onJoined((id, link) => this.attachLink(id, link));
  }

  /**
   * @internal Starts speaking the protocol with worker `id` over `link` (made by the supervisor
   * for a forked worker, before it is online; an in-memory link in tests).
   */
  attachLink(id: number, link: Link): void {
    const entry: WorkerEntry = {
      id,
      link,
      peer: undefined as unknown as Peer,
      connected: false,
      pid: undefined,
      handles: new Set(),
      draining: false,
    };
    entry.peer = this.makePeer(entry);
    this.workers.set(id, entry);
  }

  private makePeer(entry: WorkerEntry): Peer {
    // A new peer is a new bus (first link, or a hello after a bye): it starts subscribed to nothing.
    this.router.subscriptions.removeWorker(entry.id);
    let streams: StreamEndpoint | undefined;
    const peer = new Peer(
      entry.link,
      `worker ${entry.id}`,
      {
        request: (peer, frame, call) => this.router.request(entry, peer, frame, call),
        event: (_peer, frame) => this.router.event(entry, frame),
        control: (_peer, frame) => {
          if (frame.k !== Kind.subscriptions) this.handshake.control(entry, frame);
          else if (entry.pid !== undefined) this.router.subscriptions.update(entry.id, frame);
          else
            this.report(new BusError('PROTOCOL', `worker ${entry.id} subscribed before its hello`));
        },
        invalid: (_peer, reason, code) =>
          this.report(new BusError(code ?? 'PROTOCOL', `from worker ${entry.id}: ${reason}`)),
        closed: (peer) => {
          // Said hello: it may hold leases and watches even before it is ready (a warm-up).
          const greeted = entry.peer === peer && entry.pid !== undefined;
          if (entry.peer === peer) {
            entry.connected = false;
            this.workers.delete(entry.id);
            this.router.subscriptions.removeWorker(entry.id);
          }
          if (streams !== undefined) this.streams.detach(entry.id, streams);
          if (greeted) this.workerGone(entry.id);
        },
        stream: (_peer, frame, refused) => streams?.receive(frame, refused),
      },
      'TARGET_EXITED',
      this.flowLimits,
    );
    streams = this.streams.attach(entry, peer);
    return peer;
  }

  /** Tells the listeners of {@link onWorkerGone}. */
  private workerGone(workerId: number): void {
    for (const l of [...this.goneListeners]) l(workerId);
  }

  /** A worker's welcome's extension map: the supervisor's part, and each extension's. */
  private welcomeParts(workerId: number): Record<string, unknown> {
    const parts: Record<string, unknown> = { ...this.hooks.welcome?.(workerId) };
    for (const [name, installed] of this.extensions) {
      const data = installed.welcome?.(workerId);
      if (data !== undefined) parts[name] = data;
    }
    return parts;
  }

  /**
   * @internal What the hub holds for worker `id` (its peer, the methods and patterns it announced), for
   * tests through src/internal.ts; undefined for an unknown worker.
   */
  inspectWorker(id: number):
    | {
        readonly peer: Peer;
        readonly handles: ReadonlySet<string>;
        readonly patterns: ReadonlySet<string>;
      }
    | undefined {
    const entry = this.workers.get(id);
    if (entry === undefined) return undefined;
    const patterns = this.router.subscriptions.patternsOf(id);
    return { peer: entry.peer, handles: entry.handles, patterns };
  }

  /** @internal Marks a worker as draining (or not): `'any'` calls avoid it. */
  setDraining(workerId: number, draining: boolean): void {
    const entry = this.workers.get(workerId);
    if (entry !== undefined) entry.draining = draining;
  }

  /** @internal Calls in flight to a worker (sent by the primary or forwarded by it). */
  inFlightTo(workerId: number): number {
    return this.workers.get(workerId)?.peer.pendingCount ?? 0;
  }

  // ------------------------------------------------------------------ the mesh

  /**
   * @internal Makes this hub one node of a mesh (`startCluster({ mesh })`): `{ node, worker }`
   * targets, `'any'` beyond this node, mesh-wide `callAll` and `publish`. Returns what the mesh
   * needs of this node.
   */
  joinMesh(mesh: MeshRoutes): LocalRoutes {
    this.router.mesh = mesh;
    this.nodeName = mesh.node;
    return meshLocalRoutes(this.router, {
      deliver: (topic, payload, source) => {
        const origin = source === PRIMARY_ID ? 'primary' : source;
        if (this.held !== undefined) this.held.push(() => this.deliver(topic, payload, origin));
        else this.deliver(topic, payload, origin);
      },
      report: (error) => this.report(error),
    });
  }

  // ------------------------------------------------------------------ the primary's own calls

  protected route(
    target: Target,
    method: string,
    payload: Encoded,
    options: ResolvedCallOptions,
  ): Promise<Encoded> {
    if (target === 'primary') return this.local.call(method, payload, options);
    const router = this.router;
    const meshed = router.viaMesh(target, method, payload, options);
    if (meshed !== undefined) return meshed;
    if (typeof target === 'object' && 'node' in target) target = target.worker;
    let dest: WorkerEntry;
    try {
      dest =
        target === 'any'
          ? router.pickAny(method)
          : router.connectedEntry(
              typeof target === 'object' ? router.slotWorker(target.slot) : target,
            );
    } catch (error) {
      return Promise.reject(error);
    }
    return router.forward(dest, method, payload, PRIMARY_ID, options);
  }

  protected openStream(...args: Parameters<HubStreams['open']>): ReturnType<HubStreams['open']> {
    return this.streams.open(...args);
  }

  protected gather(
    method: string,
    payload: Encoded,
    options: ResolvedCallOptions,
  ): Promise<GatherItem[]> {
    const mesh = this.router.mesh;
    if (mesh !== undefined) {
      return this.router.meshGather(mesh, method, payload, options, PRIMARY_ID, options.scope);
    }
    return this.router.gather(method, payload, options.timeoutMs, options.signal, PRIMARY_ID);
  }

  // ------------------------------------------------------------------ events

  protected broadcast(topic: string, payload: Encoded): void {
    // The mesh first: over NATS's max_payload it throws before anything is sent anywhere.
    this.router.mesh?.publish(topic, payload, PRIMARY_ID);
    this.router.fanOut({ k: Kind.event, m: topic, s: PRIMARY_ID, ...payload }, undefined);
  }

  /**
   * @internal Ends the startup hold: one macrotask later (so that the code right after
   * `await startCluster()` has registered the primary's handlers and subscribers), what arrived
   * for the primary meanwhile runs, in arrival order. Called by `startCluster`.
   */
  release(): void {
    setImmediate(() => {
      const held = this.held;
      this.held = undefined;
      if (held !== undefined && !this.closing) for (const run of held) run();
    });
  }

  protected sendSystem(to: PeerId, topic: string, payload: unknown): boolean {
    if (to !== HUB_ID) return this.systemSend(to, topic, payload);
    if (this.closing || !isSystemName(topic)) return false;
    // A snapshot now, delivered in order with this process's other local calls and messages.
    const encoded = encode(payload);
    this.localLoop.post(() => this.deliver(topic, encoded, 'primary'));
    return true;
  }

  /**
   * @internal Sends system event `topic` (`$…`) to one worker. Returns false if that worker is
   * not connected.
   */
  systemSend(workerId: number, topic: string, payload: unknown): boolean {
    const entry = this.workers.get(workerId);
    if (entry === undefined || !entry.connected || !isSystemName(topic)) return false;
    return entry.peer.send({ k: Kind.event, m: topic, s: PRIMARY_ID, ...encode(payload) });
  }

  /**
   * @internal Calls `listener` with a worker's id when its bus goes away (exit, disconnect, or
   * its bus closed), after the calls routed to it have been settled.
   * @returns a function that removes the listener.
   */
  onWorkerGone(listener: (workerId: number) => void): () => void {
    this.goneListeners.add(listener);
    return () => this.goneListeners.delete(listener);
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * Closes the primary's bus: every pending call is rejected (`CLOSED`), running handlers are
   * aborted, every worker link is detached. Workers are not stopped: that is `app.close()`.
   * Idempotent; resolves when closed.
   */
  close(): Promise<void> {
    if (this.closing) return this.closed;
    this.closing = true;
    for (const w of [...this.workers.values()])
      w.peer.close('CLOSED', 'the primary closed its bus');
    this.workers.clear();
    this.goneListeners.clear();
    this.held = undefined;
    this.local.close();
    this.streams.close();
    this.finishClose();
    return this.closed;
  }
}
