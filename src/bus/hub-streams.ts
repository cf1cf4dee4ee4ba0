/**
 * Streams in the primary: one {@link StreamEndpoint} per worker link, the streams a worker opens
 * (served by the primary, or relayed to the worker it names), the primary's own streams (to a
 * worker, or to itself through the local loop), and the relay between two workers. A relay
 * forwards items and credit without decoding them, and holds the producer to the credit the
 * consumer granted: a worker that sends items it was not asked for, or grants past the largest
 * window, has its stream stopped (`PROTOCOL`, reported) and cannot make the primary queue more.
 *
 * @module
 */
import type { Origin, Target } from '../core/types.js';
import { BusError, toBusError } from '../errors.js';
import { copyPayload } from '../protocol/codec.js';
import {
  type Encoded,
  Kind,
  type Outgoing,
  PRIMARY_ID,
  type StreamFrame,
  type StreamItemFrame,
  type StreamOpenFrame,
} from '../protocol/envelope.js';
import type { Peer } from '../protocol/peer.js';
import type { HubRouter, WorkerEntry } from './hub-router.js';
import type { LocalLoop } from './local-loop.js';
import { isSystemName } from './names.js';
import type { StreamHandle } from './stream.js';
import {
  addCredit,
  type ConsumerSink,
  type ProducerSink,
  StreamEndpoint,
  type StreamOwner,
} from './streams.js';

/** What the hub's streams need of the primary's bus. */
export interface HubStreamsHost {
  readonly router: HubRouter;
  readonly localLoop: LocalLoop;
  /** Serves a stream with the primary's own handler (held while the cluster starts). */
  serve(endpoint: StreamEndpoint, frame: StreamOpenFrame, caller: Origin): void;
  report(error: BusError): void;
}

/** The streams of the primary: its workers' links, and its own loop. */
export class HubStreams {
  private readonly endpoints = new Map<number, StreamEndpoint>();
  /** The primary's streams to itself: consumer side, and producer side, over the local loop. */
  private readonly localConsumer: StreamEndpoint;
  private readonly localProducer: StreamEndpoint;

  constructor(private readonly host: HubStreamsHost) {
    const report = (error: BusError) => host.report(error);
    const post = (to: () => StreamEndpoint) => (frame: Outgoing<StreamFrame>) => {
      host.localLoop.post(() => to().receive(frame as StreamFrame));
      return true;
    };
    this.localConsumer = new StreamEndpoint(
      'the primary',
      post(() => this.localProducer),
      {
        open: () => {},
        report,
      },
    );
    this.localProducer = new StreamEndpoint(
      'the primary',
      post(() => this.localConsumer),
      {
        open: (endpoint, frame) => host.serve(endpoint, frame, 'primary'),
        report,
      },
    );
  }

  /** Streams open in the primary, both ways, over every link (for leak checks). */
  get size(): number {
    let n = this.localConsumer.size + this.localProducer.size;
    for (const e of this.endpoints.values()) n += e.size;
    return n;
  }

  /** The endpoint of worker `entry`'s new peer (a new bus: the old endpoint closes with its peer). */
  attach(entry: WorkerEntry, peer: Peer): StreamEndpoint {
    const owner: StreamOwner = {
      open: (endpoint, frame) => this.opened(entry, endpoint, frame),
      report: (error) => this.host.report(error),
    };
    const endpoint = new StreamEndpoint(`worker ${entry.id}`, (f, b) => peer.send(f, b), owner);
    this.endpoints.set(entry.id, endpoint);
    return endpoint;
  }

  /** Worker `id`'s peer closed: its streams end (`TARGET_EXITED` for who consumes from it). */
  detach(id: number, endpoint: StreamEndpoint): void {
    if (this.endpoints.get(id) === endpoint) this.endpoints.delete(id);
    endpoint.close(
      new BusError('TARGET_EXITED', `worker ${id} exited or disconnected during the stream`),
    );
  }

  /** The primary's own stream `method` on `target`. */
  open(
    target: Target,
    method: string,
    payload: Encoded,
    sink: ConsumerSink,
    items: number,
    bytes: number,
  ): StreamHandle {
    const frame: Omit<Outgoing<StreamOpenFrame>, 'i'> = {
      k: Kind.streamOpen,
      m: method,
      c: items,
      b: bytes,
    };
    copyPayload(frame, payload);
    if (target === 'primary')
      return handleOf(this.localConsumer, this.localConsumer.open(sink, frame));
    if (typeof target === 'object' && !('slot' in target)) throw crossNode(method);
    const router = this.host.router;
    const dest =
      target === 'any'
        ? router.pickAny(method)
        : router.connectedEntry(
            typeof target === 'object' ? router.slotWorker(target.slot) : target,
          );
    frame.s = PRIMARY_ID;
    const endpoint = this.endpointOf(dest);
    return handleOf(endpoint, endpoint.open(sink, frame));
  }

  /** Ends everything (the primary's bus closes). */
  close(): void {
    const error = new BusError('CLOSED', 'the bus was closed');
    this.localConsumer.close(error);
    this.localProducer.close(error);
    for (const e of this.endpoints.values()) e.close(error);
    this.endpoints.clear();
  }

  private endpointOf(entry: WorkerEntry): StreamEndpoint {
    const endpoint = this.endpoints.get(entry.id);
    if (endpoint === undefined) {
      throw new BusError('NO_TARGET', `worker ${entry.id} is not connected`);
    }
    return endpoint;
  }

  /** A stream worker `from` opened: served by the primary, or relayed to another worker. */
  private opened(from: WorkerEntry, endpoint: StreamEndpoint, frame: StreamOpenFrame): void {
    const refuse = (error: BusError) => {
      endpoint.send({ k: Kind.streamEnd, i: frame.i, e: error.toJSON() });
    };
    if (from.pid === undefined) {
      const error = new BusError(
        'PROTOCOL',
        `worker ${from.id} opened stream '${frame.m}' without an open bus; refused`,
      );
      this.host.report(error);
      refuse(error);
      return;
    }
    if (isSystemName(frame.m)) {
      refuse(
        new BusError('FORBIDDEN', `stream '${frame.m}': streams are the contract's methods only`),
      );
      return;
    }
    let dest: WorkerEntry;
    try {
      const router = this.host.router;
      const target = frame.n !== undefined ? router.slotWorker(frame.n) : frame.t;
      if (target === undefined || target === PRIMARY_ID) {
        this.host.serve(endpoint, frame, from.id);
        return;
      }
      dest = target === 'any' ? router.pickAny(frame.m) : router.connectedEntry(target);
      const relay = new Relay(endpoint, frame.i, { items: 0, bytes: 0 }, this.host.report);
      const refused = addCredit(relay.outstanding, frame.c, frame.b, endpoint.name);
      if (refused !== undefined) {
        this.host.report(refused);
        throw refused;
      }
      const out: Omit<Outgoing<StreamOpenFrame>, 'i'> = {
        k: Kind.streamOpen,
        m: frame.m,
        s: from.id,
        c: frame.c,
        b: frame.b,
      };
      copyPayload(out, frame);
      const destEndpoint = this.endpointOf(dest);
      relay.connect(destEndpoint, destEndpoint.open(relay, out));
      endpoint.producers.set(frame.i, relay);
    } catch (error) {
      refuse(toBusError(error, 'PROTOCOL'));
    }
  }
}

/** The handle of consumer `id` on `endpoint`. */
function handleOf(endpoint: StreamEndpoint, id: number): StreamHandle {
  return {
    credit: (items, bytes) => endpoint.send({ k: Kind.streamCredit, i: id, c: items, b: bytes }),
    cancel: () => endpoint.cancelConsumer(id),
  };
}

/**
 * A stream between two workers, in the primary: the producer side of the consumer's link (`a`,
 * its id there), and the consumer side of the producer's link (`b`). Payloads pass untouched.
 */
class Relay implements ProducerSink, ConsumerSink {
  private b: StreamEndpoint | undefined;
  private bId = 0;

  constructor(
    private readonly a: StreamEndpoint,
    private readonly aId: number,
    /** Credit the consumer granted and the producer has not used, as the relay counts it. */
    readonly outstanding: { items: number; bytes: number },
    private readonly report: (error: BusError) => void,
  ) {}

  connect(b: StreamEndpoint, bId: number): void {
    this.b = b;
    this.bId = bId;
  }

  // From the consumer (link a).
  credit(items: number, bytes: number): void {
    const refused = addCredit(this.outstanding, items, bytes, this.a.name);
    if (refused !== undefined) {
      this.stop(refused);
      return;
    }
    this.b?.send({ k: Kind.streamCredit, i: this.bId, c: items, b: bytes });
  }

  cancel(): void {
    this.a.producers.delete(this.aId);
    this.b?.cancelConsumer(this.bId);
  }

  // From the producer (link b).
  item(frame: StreamItemFrame, bytes: number): void {
    if (this.outstanding.items <= 0 || this.outstanding.bytes <= 0) {
      this.stop(
        new BusError(
          'PROTOCOL',
          `${this.b?.name ?? 'the producer'} sent a stream item it was not granted credit for; the stream was stopped`,
        ),
      );
      return;
    }
    this.outstanding.items--;
    this.outstanding.bytes -= bytes;
    const out: Outgoing<StreamItemFrame> = { k: Kind.streamItem, i: this.aId };
    copyPayload(out, frame);
    this.a.send(out, bytes);
  }

  end(error: BusError | undefined): void {
    this.a.endProducer(this.aId, error);
  }

  /** A violation: both ends are stopped, and it is reported. */
  private stop(error: BusError): void {
    this.report(error);
    this.a.endProducer(this.aId, error);
    this.b?.cancelConsumer(this.bId);
  }
}

/** Streams stay within one node: a `{ node, worker }` target is refused. */
export function crossNode(method: string): BusError {
  return new BusError(
    'INVALID_ARGUMENT',
    `stream '${method}': a { node, worker } target is not supported; a stream stays within one node (call a method that streams there instead)`,
  );
}
