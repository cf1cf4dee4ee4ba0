/**
 * A worker's bus: one peer, the primary, which routes everything else.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import { HUB_ID, type PeerId, type Peers } from '../core/extension.js';
import type { Origin, Target } from '../core/types.js';
import { BusError, toBusError } from '../errors.js';
import { copyPayload, decode, encode } from '../protocol/codec.js';
import {
  type Encoded,
  type EventFrame,
  type GatherItem,
  Kind,
  type Outgoing,
  PRIMARY_ID,
  type StreamOpenFrame,
  type WelcomeFrame,
} from '../protocol/envelope.js';
import { fingerprint } from '../protocol/fingerprint.js';
import { type ControlFrame, type OutgoingRequest, Peer } from '../protocol/peer.js';
import type { Link } from '../transport/link.js';
import { MAX_TIMER_MS } from '../util/duration.js';
import { type BusOptions, isSystemName, type ResolvedCallOptions } from './base.js';
import { crossNode } from './hub-streams.js';
import { SUBSCRIPTIONS_SYNC } from './hub-subscriptions.js';
import { describeTarget } from './names.js';
import type { StreamHandle } from './stream.js';
import { StreamingBus } from './streaming.js';
import { type ConsumerSink, StreamEndpoint } from './streams.js';

/** Options of {@link connect}. @category Buses */
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
 * The core of a worker's bus: `handle`, `call`, `callAll`, `publish`, `subscribe`, all routed
 * through the primary. `connect()` returns it as `WorkerBus`, with its extensions' APIs on it
 * (`store`, `lock`, `config`, `health`, drain).
 * @category Buses
 */
export class WorkerCore<C extends Contract> extends StreamingBus<C> {
  /** This worker's id (Node's `cluster.worker.id`). */
  readonly self: number;
  /** Always `'worker'`. */
  readonly side = 'worker' as const;
  private readonly goneListeners = new Set<(id: PeerId) => void>();
  protected readonly peerView: Peers = {
    ids: () => (this.peer.closed ? [] : [HUB_ID]),
    onGone: (listener) => {
      this.goneListeners.add(listener);
      return () => this.goneListeners.delete(listener);
    },
    inFlight: () => this.peer.pendingCount,
    setDraining: () => {},
  };
  private readonly peer: Peer;
  /** The streams over the link to the primary, both ways. */
  private readonly streams: StreamEndpoint;
  private announceQueued = false;
  private slotValue = 0;
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
        stream: (_peer, frame, refused) => this.streams.receive(frame, refused),
        closed: () => {
          this.closing = true;
          this.streams.close(new BusError('CLOSED', 'the link to the primary closed'));
          for (const l of [...this.goneListeners]) l(HUB_ID);
          this.goneListeners.clear();
          this.finishClose();
        },
      },
      'CLOSED',
      this.flowLimits,
    );
    this.streams = new StreamEndpoint('the primary', (f, b) => this.peer.send(f, b), {
      open: (endpoint, frame) => {
        if (isSystemName(frame.m)) {
          const error = forged(`stream '${frame.m}'`, frame.s);
          endpoint.send({ k: Kind.streamEnd, i: frame.i, e: error.toJSON() });
          this.report(error);
          return;
        }
        this.serveStream(endpoint, frame, origin(frame.s));
      },
      report: (error) => this.report(error),
    });
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

  /** @internal About how many bytes wait in the outbound queue to the primary. */
  get queuedBytes(): number {
    return this.peer.queuedBytes;
  }

  /** Calls and inbound requests not yet settled, for leak checks. */
  get pendingCount(): number {
    return this.peer.pendingCount + this.peer.inboundCount + this.streams.size;
  }

  protected route(
    target: Target,
    method: string,
    payload: Encoded,
    options: ResolvedCallOptions,
  ): Promise<Encoded> {
    const frame: OutgoingRequest = { k: Kind.request, m: method };
    copyPayload(frame, payload);
    if (typeof target === 'object') {
      if ('node' in target) {
        frame.t = target.worker;
        frame.o = target.node;
      } else frame.n = target.slot;
    } else if (target !== 'primary') frame.t = target;
    return this.peer.request(frame, {
      to:
        typeof target === 'object'
          ? describeTarget(target)
          : target === 'any'
            ? 'any worker'
            : target === 'primary'
              ? 'the primary'
              : target,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
    });
  }

  protected openStream(
    target: Target,
    method: string,
    payload: Encoded,
    sink: ConsumerSink,
    items: number,
    bytes: number,
  ): StreamHandle {
    if (this.peer.overloaded) {
      throw new BusError('OVERLOADED', `stream '${method}': the primary is not keeping up`);
    }
    const frame: Omit<Outgoing<StreamOpenFrame>, 'i'> = {
      k: Kind.streamOpen,
      m: method,
      c: items,
      b: bytes,
    };
    copyPayload(frame, payload);
    if (typeof target === 'object') {
      if (!('slot' in target)) throw crossNode(method);
      frame.n = target.slot;
    } else if (target !== 'primary') frame.t = target;
    const streams = this.streams;
    const id = streams.open(sink, frame);
    return {
      credit: (c, b) => streams.send({ k: Kind.streamCredit, i: id, c, b }),
      cancel: () => streams.cancelConsumer(id),
    };
  }

  protected gather(
    method: string,
    payload: Encoded,
    options: ResolvedCallOptions,
  ): Promise<GatherItem[]> {
    return this.peer
      .request(
        {
          k: Kind.request,
          m: method,
          t: 'all',
          d: options.timeoutMs,
          ...(options.scope === 'node' && this.node !== undefined ? { o: this.node } : {}),
          ...payload,
        },
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

  protected override subscriptionsChanged(pattern: string, subscribed: boolean): void {
    // At once, so the primary has it before anything this worker sends after subscribing.
    this.peer.send(
      subscribed
        ? { k: Kind.subscriptions, a: [pattern] }
        : { k: Kind.subscriptions, r: [pattern] },
    );
  }

  protected override subscriptionsSynced(): Promise<void> {
    // Answered after the primary applied every 'sub' frame sent before it (the link keeps order).
    return this.systemCall(SUBSCRIPTIONS_SYNC, 'primary', undefined).then(() => undefined);
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
