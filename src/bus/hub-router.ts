/**
 * The hub's routing, in the primary: the table of workers, a worker's requests and events (to
 * the primary, or on to other workers, payloads untouched), `'any'` selection, gather, the
 * fan-out of events, and the trust checks of what a worker may send.
 *
 * @module
 */
import type { MeshRoutes, RouteOptions } from '../core/mesh.js';
import type { Target } from '../core/types.js';
import { BusError, toBusError } from '../errors.js';
import { copyPayload } from '../protocol/codec.js';
import {
  type Encoded,
  type EventFrame,
  type GatherItem,
  Kind,
  PRIMARY_ID,
  type RequestFrame,
  type ResponseFrame,
} from '../protocol/envelope.js';
import type { InboundCall, OutgoingRequest, Peer } from '../protocol/peer.js';
import type { Link } from '../transport/link.js';
import { describeOrigin, isSystemName } from './base.js';
import { HubSubscriptions } from './hub-subscriptions.js';

/** A worker as the primary's bus sees it. */
export interface WorkerEntry {
  readonly id: number;
  readonly link: Link;
  peer: Peer;
  /** The worker's bus said hello and was welcomed. */
  connected: boolean;
  pid: number | undefined;
  /** Methods the worker handles, as it last announced. */
  handles: ReadonlySet<string>;
  /** Being drained: `'any'` calls go elsewhere when another worker handles the method. */
  draining: boolean;
}

/** What the router needs of the primary's bus. */
export interface RouterHost {
  /** Reports what has nobody to reject (the bus's `error` event). */
  report(error: BusError): void;
  /** The id of the worker serving `slot`; undefined if none. */
  resolveSlot(slot: number): number | undefined;
  /** Serves a worker's request with the primary's own handler (held while the cluster starts). */
  serve(peer: Peer, frame: RequestFrame, from: number, call: InboundCall): void;
  /** Delivers a worker's event to the primary's subscribers (held while the cluster starts). */
  deliver(frame: EventFrame, from: number): void;
}

/** The payload of a frame, alone. */
function payloadOf(frame: Encoded): Encoded {
  const out: Encoded = {};
  copyPayload(out, frame);
  return out;
}

/** The routing between the primary and the workers, and between workers. */
export class HubRouter {
  /** Every attached worker, by id (connected or not yet). */
  readonly workers = new Map<number, WorkerEntry>();
  /** The patterns each worker subscribes to: events go only where one matches. */
  readonly subscriptions: HubSubscriptions;
  private anyCursor = 0;
  /** The mesh, when this hub is one node of several (set by `startCluster({ mesh })`). */
  mesh: MeshRoutes | undefined;

  /**
   * @param host - the primary's bus.
   * @param callTimeoutMs - the timeout of a worker's gather that names none.
   */
  constructor(
    private readonly host: RouterHost,
    private readonly callTimeoutMs: number,
  ) {
    this.subscriptions = new HubSubscriptions((error) => host.report(error));
  }

  /** Ids of the workers whose bus is connected, ascending. */
  connectedWorkers(): number[] {
    const ids: number[] = [];
    for (const w of this.workers.values()) if (w.connected) ids.push(w.id);
    return ids.sort((a, b) => a - b);
  }

  /** The worker serving `slot`; throws `NO_TARGET` when the slot has none. */
  slotWorker(slot: number): number {
    const id = this.host.resolveSlot(slot);
    if (id === undefined) {
      throw new BusError(
        'NO_TARGET',
        `no worker serves slot ${slot} (unknown slot, or restarting)`,
      );
    }
    return id;
  }

  /**
   * Refuses what a worker may not send: anything before its hello (or after its bye, which
   * ends its bus until a new hello), and any system protocol (`$…`) addressed to anyone but the
   * primary. Those protocols are the primary's: a worker never drives another worker's.
   * Returns the refusal, already reported.
   */
  private refuse(from: WorkerEntry, frame: RequestFrame | EventFrame): BusError | undefined {
    let error: BusError | undefined;
    const what = frame.k === Kind.request ? `request '${frame.m}'` : `event '${frame.m}'`;
    if (from.pid === undefined) {
      error = new BusError(
        'PROTOCOL',
        `worker ${from.id} sent ${what} without an open bus (before its hello, or after its bye); refused`,
      );
    } else if (
      frame.k === Kind.request &&
      isSystemName(frame.m) &&
      ((frame.t !== undefined && frame.t !== PRIMARY_ID) || frame.n !== undefined)
    ) {
      error = new BusError(
        'FORBIDDEN',
        `worker ${from.id} sent ${what} to another worker; system protocols are the primary's and are never routed between workers`,
      );
    }
    if (error !== undefined) this.host.report(error);
    return error;
  }

  /** A request from worker `from`: served by the primary, gathered, or forwarded to a worker. */
  request(from: WorkerEntry, peer: Peer, frame: RequestFrame, call: InboundCall): void {
    const refused = this.refuse(from, frame);
    if (refused !== undefined) {
      peer.fail(frame.i, refused);
      return;
    }
    let target = frame.t;
    if (frame.n !== undefined) {
      try {
        target = this.slotWorker(frame.n);
      } catch (error) {
        peer.fail(frame.i, toBusError(error, 'PROTOCOL'));
        return;
      }
    }
    if (target === undefined || target === PRIMARY_ID) {
      this.host.serve(peer, frame, from.id, call);
      return;
    }
    if (this.mesh !== undefined && this.meshRequest(this.mesh, from, peer, frame, call)) return;
    if (target === 'all') {
      const timeoutMs = frame.d ?? this.callTimeoutMs;
      this.gather(frame.m, frame, timeoutMs, call.signal, from.id).then(
        (items) => peer.reply(frame.i, {}, items),
        (error: unknown) => peer.fail(frame.i, toBusError(error, 'PROTOCOL')),
      );
      return;
    }
    let dest: WorkerEntry;
    try {
      dest = target === 'any' ? this.pickAny(frame.m) : this.connectedEntry(target);
    } catch (error) {
      peer.fail(frame.i, toBusError(error, 'PROTOCOL'));
      return;
    }
    // The hot path: forwarded with callbacks, payload untouched, no promise and no AbortSignal.
    const out: OutgoingRequest = { k: Kind.request, m: frame.m, s: from.id };
    copyPayload(out, frame);
    const id = dest.peer.issue(
      out,
      { to: dest.id },
      (response) => peer.reply(frame.i, response),
      (error) => peer.fail(frame.i, error),
    );
    if (id !== 0) {
      call.onAbort = (reason) => dest.peer.cancel(id, reason.code, reason.message);
    }
  }

  /**
   * A worker's request that goes through the mesh: to another node's worker, a gather of the
   * whole mesh, an `'any'` with no local worker (or not local first). Returns false when it is
   * this node's to route.
   */
  private meshRequest(
    mesh: MeshRoutes,
    from: WorkerEntry,
    peer: Peer,
    frame: RequestFrame,
    call: InboundCall,
  ): boolean {
    const t = frame.t;
    let run: ((options: RouteOptions) => Promise<Encoded | GatherItem[]>) | undefined;
    if (t === 'all') {
      const scope = frame.o === undefined ? 'mesh' : 'node';
      run = (o) => this.meshGather(mesh, frame.m, frame, o, from.id, scope);
    } else if (typeof t === 'number' && t !== PRIMARY_ID && frame.o !== undefined) {
      if (frame.o === mesh.node) return false;
      run = (o) => mesh.call(frame.o!, t, frame.m, payloadOf(frame), o);
    } else if (t === 'any') {
      if (mesh.localFirst && this.hasLocal(frame.m)) return false;
      run = (o) => mesh.any(frame.m, payloadOf(frame), o);
    } else return false;
    const controller = new AbortController();
    call.onAbort = (reason) => controller.abort(reason);
    run({ timeoutMs: frame.d ?? this.callTimeoutMs, signal: controller.signal }).then(
      (r) => (Array.isArray(r) ? peer.reply(frame.i, {}, r) : peer.reply(frame.i, r)),
      (error: unknown) => peer.fail(frame.i, toBusError(error, 'PROTOCOL')),
    );
    return true;
  }

  /**
   * A call of the primary's own that goes through the mesh (another node's worker; `'any'` with
   * no local worker, or not local first), or undefined when it is this node's to route.
   */
  viaMesh(
    target: Target,
    method: string,
    payload: Encoded,
    options: RouteOptions,
  ): Promise<Encoded> | undefined {
    const mesh = this.mesh;
    if (typeof target === 'object' && 'node' in target) {
      if (mesh === undefined) {
        return Promise.reject(
          new BusError('NO_TARGET', `node '${target.node}': this cluster is not part of a mesh`),
        );
      }
      if (target.node === mesh.node) return undefined;
      return mesh.call(target.node, target.worker, method, payload, options);
    }
    if (target === 'any' && mesh !== undefined && !(mesh.localFirst && this.hasLocal(method))) {
      return mesh.any(method, payload, options);
    }
    return undefined;
  }

  /** Whether a connected worker of this node handles `method`. */
  hasLocal(method: string): boolean {
    for (const w of this.workers.values()) if (w.connected && w.handles.has(method)) return true;
    return false;
  }

  /** This node's gather, and with scope `'mesh'` every other node's, each item with its node. */
  meshGather(
    mesh: MeshRoutes,
    method: string,
    payload: Encoded,
    options: RouteOptions,
    source: number,
    scope: 'mesh' | 'node' = 'mesh',
  ): Promise<GatherItem[]> {
    return Promise.all([
      this.gather(method, payload, options.timeoutMs, options.signal, source),
      scope === 'mesh' ? mesh.gather(method, payload, options) : [],
    ]).then(([local, remote]) => [...local.map((i) => ({ ...i, o: mesh.node })), ...remote]);
  }

  /** Sends a request on to a worker, payload untouched; the caller's own timeout governs. */
  forward(
    dest: WorkerEntry,
    method: string,
    payload: Encoded,
    source: number,
    options: {
      signal?: AbortSignal | undefined;
      timeoutMs?: number | undefined;
    },
  ): Promise<ResponseFrame> {
    const frame: OutgoingRequest = { k: Kind.request, m: method, s: source };
    copyPayload(frame, payload);
    return dest.peer.request(frame, {
      to: dest.id,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
    });
  }

  /** Worker `id`, if connected; throws `NO_TARGET` otherwise. */
  connectedEntry(id: number): WorkerEntry {
    const entry = this.workers.get(id);
    if (entry === undefined || !entry.connected) {
      throw new BusError(
        'NO_TARGET',
        `worker ${id} is not a connected worker (unknown, exited, or not yet connected)`,
      );
    }
    return entry;
  }

  /** Picks a connected worker that handles `method`, round-robin; draining ones as a last resort. */
  pickAny(method: string): WorkerEntry {
    let candidates: WorkerEntry[] = [];
    const draining: WorkerEntry[] = [];
    let connected = 0;
    for (const w of this.workers.values()) {
      if (!w.connected) continue;
      connected++;
      if (w.handles.has(method)) (w.draining ? draining : candidates).push(w);
    }
    if (candidates.length === 0) candidates = draining;
    if (candidates.length === 0) {
      throw connected === 0
        ? new BusError('NO_TARGET', `call '${method}' to any worker: no worker is connected`)
        : new BusError(
            'NO_HANDLER',
            `call '${method}' to any worker: none of the ${connected} connected workers handles it`,
          );
    }
    this.anyCursor = (this.anyCursor + 1) % 1_000_000_007;
    return candidates[this.anyCursor % candidates.length]!;
  }

  /**
   * Sends a request to every connected worker; one item per worker, its answer or its error.
   * One promise settles them all: each worker's request settles through callbacks.
   */
  gather(
    method: string,
    payload: Encoded,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    source: number,
  ): Promise<GatherItem[]> {
    const ids = this.connectedWorkers();
    if (ids.length === 0) return Promise.resolve([]);
    return new Promise<GatherItem[]>((resolve) => {
      const items = new Array<GatherItem>(ids.length);
      let left = ids.length;
      const settle = (index: number, item: GatherItem) => {
        items[index] = item;
        if (--left === 0) resolve(items);
      };
      for (let index = 0; index < ids.length; index++) {
        const id = ids[index]!;
        const frame: OutgoingRequest = { k: Kind.request, m: method, s: source };
        copyPayload(frame, payload);
        this.workers.get(id)!.peer.issue(
          frame,
          { to: id, timeoutMs, signal },
          (response) => {
            const item: GatherItem = { w: id };
            copyPayload(item, response);
            settle(index, item);
          },
          (error) => settle(index, { w: id, e: error.toJSON() }),
        );
      }
    });
  }

  /** An event from worker `from`: to the other workers, and to the primary's subscribers. */
  event(from: WorkerEntry, frame: EventFrame): void {
    if (this.refuse(from, frame) !== undefined) return;
    if (isSystemName(frame.m)) {
      // System events from a worker are for the primary only.
      this.host.deliver(frame, from.id);
      return;
    }
    if (frame.s !== from.id) {
      this.host.report(
        new BusError(
          'PROTOCOL',
          `worker ${from.id} sent an event claiming to come from ${describeOrigin(frame.s || 'primary')}`,
        ),
      );
      return;
    }
    this.fanOut(frame, from.id);
    this.host.deliver(frame, from.id);
    try {
      this.mesh?.publish(frame.m, frame, from.id);
    } catch (error) {
      // Over NATS's max_payload: the other nodes do not get it, and that is told.
      this.host.report(toBusError(error, 'PAYLOAD_TOO_LARGE'));
    }
  }

  /**
   * Sends an event frame to every connected worker but `except` that subscribes to a pattern its
   * topic matches. A worker whose queue is over `maxQueueBytes` is skipped and reported
   * (`OVERLOADED` on the `error` event), never silently.
   */
  fanOut(frame: Omit<EventFrame, '$cb'>, except: number | undefined): void {
    this.subscriptions.subscribers(frame.m, (id) => {
      const w = this.workers.get(id);
      if (w === undefined || !w.connected || w.id === except) return;
      if (w.peer.overloaded) {
        this.host.report(
          new BusError(
            'OVERLOADED',
            `event '${frame.m}' not sent to worker ${w.id}: it is not keeping up (over maxQueueBytes waiting to be sent)`,
          ),
        );
        return;
      }
      w.peer.send(frame);
    });
  }
}
