/**
 * The streams of one link (streamed responses): the consumers waiting on streams this process
 * opened, and the producers serving streams the other end opened, each by id, and the dispatch of
 * the stream frames between them. The consumer is `stream.ts`, the producer `stream-serve.ts`,
 * the hub's relay between two workers `hub-streams.ts`; they all meet here.
 *
 * Flow control is credit-based: the consumer grants items and bytes (its window), the producer
 * sends while it has both, and the consumer grants more as its loop consumes. A producer that
 * sends what it was not granted, or a consumer that grants past the largest window, is refused
 * where that is received (`PROTOCOL`): the stream ends, the other end is told.
 *
 * @module
 */
import { BusError } from '../errors.js';
import { encodedSize } from '../protocol/codec.js';
import {
  Kind,
  type Outgoing,
  type StreamFrame,
  type StreamItemFrame,
  type StreamOpenFrame,
} from '../protocol/envelope.js';

/** Default window of a stream, in items. */
export const DEFAULT_WINDOW_ITEMS = 64;
/** Default window of a stream, in bytes (1 MiB). */
export const DEFAULT_WINDOW_BYTES = 1024 * 1024;
/** The largest window in items a consumer may ask for (and a producer or the hub accepts). */
export const MAX_WINDOW_ITEMS = 65_536;
/** The largest window in bytes a consumer may ask for (64 MiB). */
export const MAX_WINDOW_BYTES = 64 * 1024 * 1024;

/**
 * The most streams open at once over one link in each direction: this process consuming from
 * the other end, and the other end consuming from this one (relayed streams included). Past it
 * a new stream is refused with `LIMIT_EXCEEDED`: by the consumer before it is sent, and by the
 * producer's side for a peer that skips its bus.
 */
export const MAX_STREAMS_PER_LINK = 10_000;

/** Where a stream's frames go: the link's peer, or the local loop. */
export type StreamSend = (frame: Outgoing<StreamFrame>, bytes?: number) => boolean;

/** A consumer of a stream, as its endpoint sees it. */
export interface ConsumerSink {
  /** One item (`bytes`: its size as the window counts it). */
  item(frame: StreamItemFrame, bytes: number): void;
  /** The producer ended the stream: completed (`undefined`) or with an error. */
  end(error: BusError | undefined): void;
}

/** A producer of a stream, as its endpoint sees it. */
export interface ProducerSink {
  /** More credit from the consumer. */
  credit(items: number, bytes: number): void;
  /** The consumer stopped, or its link went: stop, and say nothing more. */
  cancel(reason: BusError): void;
}

/** What owns an endpoint: serves (or routes) the streams the other end opens. */
export interface StreamOwner {
  /** A stream the other end opened; the owner registers its producer, or ends it with an error. */
  open(endpoint: StreamEndpoint, frame: StreamOpenFrame): void;
  /** Reports what has nobody to reject (the bus's `error` event). */
  report(error: BusError): void;
}

/** The streams of one link, both ways. */
export class StreamEndpoint {
  private nextId = 1;
  /** Streams this side opened (it consumes), by its own id. */
  readonly consumers = new Map<number, ConsumerSink>();
  /** Streams the other side opened (this side produces or relays), by the other side's id. */
  readonly producers = new Map<number, ProducerSink>();
  private closedWith: BusError | undefined;

  /**
   * @param name - who is at the other end, for messages (`worker 3`, `the primary`).
   * @param out - sends a frame to the other end.
   */
  constructor(
    readonly name: string,
    private readonly out: StreamSend,
    private readonly owner: StreamOwner,
  ) {}

  /** Whether the link is gone. */
  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Streams open on this link, both ways (for leak checks). */
  get size(): number {
    return this.consumers.size + this.producers.size;
  }

  /**
   * Opens a stream to the other end with `sink` as its consumer: sends the open frame. Returns
   * its id; throws the link's close error if it is gone.
   */
  open(sink: ConsumerSink, frame: Omit<Outgoing<StreamOpenFrame>, 'i'>): number {
    if (this.closedWith !== undefined) throw this.closedWith;
    if (this.consumers.size >= MAX_STREAMS_PER_LINK) throw tooMany(this.name);
    const id = this.nextId++;
    this.consumers.set(id, sink);
    const out = { ...frame, i: id } as Outgoing<StreamOpenFrame>;
    this.out(out, encodedSize(out));
    return id;
  }

  /** Sends a stream frame to the other end (false if the link is gone). */
  send(frame: Outgoing<StreamFrame>, bytes?: number): boolean {
    if (this.closedWith !== undefined) return false;
    return this.out(frame, bytes);
  }

  /** Ends producer `id` with `error` (or completes it) and forgets it. */
  endProducer(id: number, error?: BusError): void {
    if (!this.producers.delete(id)) return;
    this.send(
      error === undefined
        ? { k: Kind.streamEnd, i: id }
        : { k: Kind.streamEnd, i: id, e: error.toJSON() },
    );
  }

  /** Stops consumer `id` (break, abort, timeout, a refusal): tells the producer, forgets it. */
  cancelConsumer(id: number): void {
    if (this.consumers.delete(id)) this.send({ k: Kind.streamCancel, i: id });
  }

  /** Reads one stream frame from the other end; `refused` when it was over the payload limits. */
  receive(frame: StreamFrame, refused?: BusError): void {
    if (this.closedWith !== undefined) return;
    switch (frame.k) {
      case 'so':
        if (this.producers.has(frame.i)) {
          this.owner.report(
            new BusError('PROTOCOL', `${this.name} opened stream ${frame.i} twice; ignored`),
          );
          return;
        }
        if (refused !== undefined) {
          this.send({ k: Kind.streamEnd, i: frame.i, e: refused.toJSON() });
          return;
        }
        if (this.producers.size >= MAX_STREAMS_PER_LINK) {
          const error = tooMany(this.name);
          this.owner.report(error);
          this.send({ k: Kind.streamEnd, i: frame.i, e: error.toJSON() });
          return;
        }
        this.owner.open(this, frame);
        return;
      case 'sc':
        this.producers.get(frame.i)?.credit(frame.c, frame.b);
        return;
      case 'sx':
        this.producers
          .get(frame.i)
          ?.cancel(new BusError('ABORTED', `the consumer on ${this.name} stopped the stream`));
        return;
      case 'si': {
        const sink = this.consumers.get(frame.i);
        if (sink === undefined) return; // after a cancel: the items in flight are expected
        if (refused !== undefined) {
          this.cancelConsumer(frame.i);
          sink.end(refused);
          return;
        }
        sink.item(frame, encodedSize(frame));
        return;
      }
      case 'se': {
        const sink = this.consumers.get(frame.i);
        if (sink === undefined) return;
        this.consumers.delete(frame.i);
        sink.end(frame.e === undefined ? undefined : (refused ?? BusError.fromJSON(frame.e)));
      }
    }
  }

  /**
   * The link is gone: every consumer ends with `error` (`TARGET_EXITED`, or `CLOSED`), every
   * producer is cancelled. Idempotent.
   */
  close(error: BusError): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = error;
    const consumers = [...this.consumers.values()];
    const producers = [...this.producers.values()];
    this.consumers.clear();
    this.producers.clear();
    for (const c of consumers) c.end(error);
    for (const p of producers) p.cancel(error);
  }
}

function tooMany(name: string): BusError {
  return new BusError(
    'LIMIT_EXCEEDED',
    `${MAX_STREAMS_PER_LINK} streams are already open with ${name}; stream refused`,
    { data: { limit: 'streamsPerLink', value: MAX_STREAMS_PER_LINK } },
  );
}

/**
 * Checks credit received from a consumer against what the producer knows is outstanding:
 * returns the new outstanding credit, or the refusal when it goes past the largest window.
 */
export function addCredit(
  outstanding: { items: number; bytes: number },
  items: number,
  bytes: number,
  from: string,
): BusError | undefined {
  outstanding.items += items;
  outstanding.bytes += bytes;
  if (outstanding.items <= MAX_WINDOW_ITEMS && outstanding.bytes <= MAX_WINDOW_BYTES) {
    return undefined;
  }
  return new BusError(
    'PROTOCOL',
    `${from} granted credit past the largest window (${MAX_WINDOW_ITEMS} items, ${MAX_WINDOW_BYTES} bytes); the stream was stopped`,
  );
}
