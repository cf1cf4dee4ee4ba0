/**
 * The primary's bus and the hub of the cluster: one peer per worker, and the routing between
 * them. Forwarded requests and events are passed on without decoding their payloads.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import { HUB_ID, type PeerId, type Peers } from '../core/extension.js';
import type { Target } from '../core/types.js';
import { BusError, toBusError } from '../errors.js';
import { copyPayload, encode } from '../protocol/codec.js';
import {
  type Encoded,
  type EventFrame,
  type GatherItem,
  type HelloFrame,
  Kind,
  type Outgoing,
  PRIMARY_ID,
  type RequestFrame,
  type ResponseFrame,
  type WelcomeFrame,
} from '../protocol/envelope.js';
import { describeDrift, fingerprint } from '../protocol/fingerprint.js';
import {
  type ControlFrame,
  type InboundCall,
  type OutgoingRequest,
  Peer,
} from '../protocol/peer.js';
import { describeRequest, PendingCalls } from '../protocol/pending.js';
import type { Link } from '../transport/link.js';
import {
  BaseBus,
  type BusOptions,
  describeOrigin,
  isSystemName,
  type ResolvedCallOptions,
  type Responder,
} from './base.js';

/** A worker as the primary's bus sees it. */
interface WorkerEntry {
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
 * The primary's bus: the same `handle`, `call`, `callAll`, `publish`, `subscribe` as a worker's,
 * and the router every worker's messages go through. Made by `startCluster`, found as `app.bus`.
 */
export class PrimaryBus<C extends Contract> extends BaseBus<C> {
  /** Always `'primary'`. */
  readonly self = 'primary' as const;
  /** Always `'hub'`. */
  readonly side = 'hub' as const;
  protected readonly peers: Peers = {
    ids: () => this.connectedWorkers(),
    onGone: (listener) => this.onWorkerGone(listener),
    inFlight: (id) => this.inFlightTo(id),
    setDraining: (id, draining) => this.setDraining(id, draining),
  };
  private readonly workers = new Map<number, WorkerEntry>();
  /** The primary's calls to itself, and the signals of the handlers serving them. */
  private readonly local = new PendingCalls((id) => {
    this.localInbound.get(id)?.abort(new BusError('ABORTED', 'the caller gave up on the call'));
    this.localInbound.delete(id);
  });
  private readonly localInbound = new Map<number, AbortController>();
  /** Answers through the local loop: after what the handler sent itself, as a link would. */
  private readonly localResponder: Responder = {
    reply: (id, result) => {
      this.localInbound.delete(id);
      const frame: ResponseFrame = { $cb: 1, k: Kind.response, i: id, ...result };
      this.localLoop.post(() => this.local.resolve(id, frame));
    },
    fail: (id, error) => {
      this.localInbound.delete(id);
      this.localLoop.post(() => this.local.reject(id, error));
    },
  };
  private nextLocalId = 1;
  private anyCursor = 0;
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
    this.allowContractMismatch = options.allowContractMismatch === true;
  }

  /** Let workers with a different contract in (reported), instead of refusing them. */
  private readonly allowContractMismatch: boolean;

  /** Ids of the workers whose bus is connected, ascending. */
  connectedWorkers(): number[] {
    const ids: number[] = [];
    for (const w of this.workers.values()) if (w.connected) ids.push(w.id);
    return ids.sort((a, b) => a - b);
  }

  /** Calls and inbound requests not yet settled, over every link, for leak checks. */
  get pendingCount(): number {
    let n = this.local.size + this.localInbound.size;
    for (const w of this.workers.values()) n += w.peer.pendingCount + w.peer.inboundCount;
    return n;
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
    return new Peer(
      entry.link,
      `worker ${entry.id}`,
      {
        request: (peer, frame, call) => this.onRequest(entry, peer, frame, call),
        event: (_peer, frame) => this.onEvent(entry, frame),
        control: (_peer, frame) => this.onControl(entry, frame),
        invalid: (_peer, reason, code) =>
          this.report(new BusError(code ?? 'PROTOCOL', `from worker ${entry.id}: ${reason}`)),
        closed: (peer) => {
          // Said hello: it may hold leases and watches even before it is ready (a warm-up).
          const greeted = entry.peer === peer && entry.pid !== undefined;
          if (entry.peer === peer) {
            entry.connected = false;
            this.workers.delete(entry.id);
          }
          if (greeted) for (const l of [...this.goneListeners]) l(entry.id);
        },
      },
      'TARGET_EXITED',
      this.flowLimits,
    );
  }

  private onControl(entry: WorkerEntry, frame: ControlFrame): void {
    switch (frame.k) {
      case Kind.hello:
        if (entry.pid !== undefined) {
          this.report(new BusError('PROTOCOL', `worker ${entry.id} said hello twice`));
          return;
        }
        if (!this.checkContract(entry, frame)) {
          this.hooks.refused?.(entry.id);
          return;
        }
        entry.pid = frame.pid;
        this.sendWelcome(entry);
        return;
      case Kind.ready:
        if (entry.pid === undefined || entry.connected) {
          this.report(new BusError('PROTOCOL', `worker ${entry.id} sent an unexpected ready`));
          return;
        }
        entry.handles = new Set(frame.m);
        entry.connected = true;
        this.hooks.connected(entry.id, entry.pid);
        return;
      case Kind.handlers:
        entry.handles = new Set(frame.m);
        return;
      case Kind.bye: {
        // The worker closed its bus on purpose: settle what was routed to it, and be ready
        // for a new hello on the same channel.
        const old = entry.peer;
        const greeted = entry.pid !== undefined;
        entry.connected = false;
        entry.pid = undefined;
        entry.handles = new Set();
        entry.peer = this.makePeer(entry);
        old.close('TARGET_EXITED', `worker ${entry.id} closed its bus`);
        // Its bus is gone as surely as if it had exited: its leases and watches end now.
        if (greeted) for (const l of [...this.goneListeners]) l(entry.id);
        return;
      }
      default:
        this.report(
          new BusError('PROTOCOL', `worker ${entry.id} sent an unexpected '${frame.k}' frame`),
        );
    }
  }

  /**
   * Compares a worker's contract fingerprint with the primary's. A difference refuses the worker
   * (`CONTRACT_MISMATCH`, naming what differs: its `connect()` rejects) unless
   * `allowContractMismatch`, which lets it in and reports the difference.
   */
  private checkContract(entry: WorkerEntry, frame: HelloFrame): boolean {
    const mine = fingerprint(this.contract);
    if (frame.h === undefined || frame.h === mine.hash) return true;
    const drift = describeDrift(mine, { hash: frame.h, entries: frame.f ?? {} });
    const what = drift.length > 0 ? drift.join(', ') : 'the contracts differ';
    if (this.allowContractMismatch) {
      this.report(
        new BusError(
          'CONTRACT_MISMATCH',
          `worker ${entry.id} connected with a different contract (allowed by allowContractMismatch): ${what}`,
        ),
      );
      return true;
    }
    const refusal = new BusError(
      'CONTRACT_MISMATCH',
      `worker ${entry.id}'s contract differs from the primary's: ${what}`,
    );
    entry.peer.send({ k: Kind.welcome, w: entry.id, e: refusal.toJSON() });
    this.report(refusal);
    return false;
  }

  private sendWelcome(entry: WorkerEntry): void {
    const parts: Record<string, unknown> = { ...this.hooks.welcome?.(entry.id) };
    for (const [name, installed] of this.extensions) {
      const data = installed.welcome?.(entry.id);
      if (data !== undefined) parts[name] = data;
    }
    const frame: Outgoing<WelcomeFrame> = { k: Kind.welcome, w: entry.id };
    if (Object.keys(parts).length > 0) frame.x = encode(parts);
    entry.peer.send(frame);
  }

  /** The worker serving `slot`; throws `NO_TARGET` when the slot has none. */
  private slotWorker(slot: number): number {
    const id = this.hooks.resolveSlot?.(slot);
    if (id === undefined) {
      throw new BusError(
        'NO_TARGET',
        `no worker serves slot ${slot} (unknown slot, or restarting)`,
      );
    }
    return id;
  }

  /**
   * @internal What the hub holds for worker `id` (its peer, the methods it announced), for
   * tests through src/internal.ts; undefined for an unknown worker.
   */
  inspectWorker(
    id: number,
  ): { readonly peer: Peer; readonly handles: ReadonlySet<string> } | undefined {
    const entry = this.workers.get(id);
    return entry === undefined ? undefined : { peer: entry.peer, handles: entry.handles };
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

  // ------------------------------------------------------------------ hub: requests from workers

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
    if (error !== undefined) this.report(error);
    return error;
  }

  private onRequest(from: WorkerEntry, peer: Peer, frame: RequestFrame, call: InboundCall): void {
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
      if (this.held !== undefined && !isSystemName(frame.m)) {
        this.held.push(() => this.serve(peer, frame.i, frame.m, frame, from.id, call));
      } else {
        this.serve(peer, frame.i, frame.m, frame, from.id, call);
      }
      return;
    }
    if (target === 'all') {
      const timeoutMs = frame.d ?? this.callTimeoutMs;
      this.gatherRaw(frame.m, frame, timeoutMs, call.signal, from.id).then(
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

  /** Sends a request on to a worker, payload untouched; the caller's own timeout governs. */
  private forward(
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

  private connectedEntry(id: number): WorkerEntry {
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
  private pickAny(method: string): WorkerEntry {
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

  private gatherRaw(
    method: string,
    payload: Encoded,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    source: number,
  ): Promise<GatherItem[]> {
    const ids = this.connectedWorkers();
    return Promise.all(
      ids.map((id) =>
        this.forward(this.workers.get(id)!, method, payload, source, {
          timeoutMs,
          signal,
        }).then(
          (r): GatherItem => {
            const item: GatherItem = { w: id };
            copyPayload(item, r);
            return item;
          },
          (error: unknown): GatherItem => ({ w: id, e: toBusError(error, 'PROTOCOL').toJSON() }),
        ),
      ),
    );
  }

  // ------------------------------------------------------------------ the primary's own calls

  protected route(
    target: Target,
    method: string,
    payload: Encoded,
    options: ResolvedCallOptions,
  ): Promise<Encoded> {
    if (target === 'primary') return this.callLocal(method, payload, options);
    let dest: WorkerEntry;
    try {
      dest =
        target === 'any'
          ? this.pickAny(method)
          : this.connectedEntry(typeof target === 'object' ? this.slotWorker(target.slot) : target);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.forward(dest, method, payload, PRIMARY_ID, options);
  }

  /** A call from the primary to itself: same validation, timeout and abort as a remote one. */
  private callLocal(
    method: string,
    payload: Encoded,
    options: ResolvedCallOptions,
  ): Promise<Encoded> {
    return new Promise<ResponseFrame>((resolve, reject) => {
      const opts = { resolve, reject, method, to: 'the primary', ...options };
      if (options.signal?.aborted) {
        const request = describeRequest(opts);
        reject(new BusError('ABORTED', `${request} was aborted`, { cause: options.signal.reason }));
        return;
      }
      const id = this.nextLocalId++;
      const controller = new AbortController();
      this.localInbound.set(id, controller);
      this.local.add(id, opts);
      // On the local loop, like a local publish's delivery, so the two keep their order; it
      // yields to the event loop, so a loop of local calls never starves routing and timers.
      this.localLoop.post(() =>
        this.serve(this.localResponder, id, method, payload, 'primary', controller),
      );
    });
  }

  protected gather(
    method: string,
    payload: Encoded,
    options: ResolvedCallOptions,
  ): Promise<GatherItem[]> {
    return this.gatherRaw(method, payload, options.timeoutMs, options.signal, PRIMARY_ID);
  }

  // ------------------------------------------------------------------ events

  private onEvent(from: WorkerEntry, frame: EventFrame): void {
    if (this.refuse(from, frame) !== undefined) return;
    if (isSystemName(frame.m)) {
      // System events from a worker are for the primary only.
      this.deliver(frame.m, frame, from.id);
      return;
    }
    if (frame.s !== from.id) {
      this.report(
        new BusError(
          'PROTOCOL',
          `worker ${from.id} sent an event claiming to come from ${describeOrigin(frame.s || 'primary')}`,
        ),
      );
      return;
    }
    this.fanOut(frame, from.id);
    if (this.held !== undefined) this.held.push(() => this.deliver(frame.m, frame, from.id));
    else this.deliver(frame.m, frame, from.id);
  }

  protected broadcast(topic: string, payload: Encoded): void {
    this.fanOut({ k: Kind.event, m: topic, s: PRIMARY_ID, ...payload }, undefined);
  }

  /**
   * Sends an event frame to every connected worker but `except`. A worker whose queue is over
   * `maxQueueBytes` is skipped and reported (`OVERLOADED` on the `error` event), never silently.
   */
  private fanOut(frame: Omit<EventFrame, '$cb'>, except: number | undefined): void {
    for (const w of this.workers.values()) {
      if (!w.connected || w.id === except) continue;
      if (w.peer.overloaded) {
        this.report(
          new BusError(
            'OVERLOADED',
            `event '${frame.m}' not sent to worker ${w.id}: it is not keeping up (over maxQueueBytes waiting to be sent)`,
          ),
        );
        continue;
      }
      w.peer.send(frame);
    }
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
    this.local.rejectAll('CLOSED', (label) => `${label} failed: the bus was closed`);
    for (const c of this.localInbound.values())
      c.abort(new BusError('CLOSED', 'the bus was closed'));
    this.localInbound.clear();
    this.finishClose();
    return this.closed;
  }
}
