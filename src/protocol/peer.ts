/**
 * A peer: the protocol spoken over one {@link Link}. It numbers and tracks outbound requests
 * (through {@link PendingCalls}), tracks inbound requests so a cancel or the peer's exit can abort
 * them, coalesces the frames sent in one tick into one message, and hands every other frame to
 * its owner. It knows nothing of `cluster`.
 *
 * @module
 */
import { BusError, type BusErrorCode } from '../errors.js';
import type { Link } from '../transport/link.js';
import {
  checkEncoded,
  checkValue,
  JSON_PAYLOADS,
  type PayloadCodec,
  type PayloadLimits,
} from './codec.js';
import {
  type ControlFrame,
  type Encoded,
  type EventFrame,
  type Frame,
  type GatherItem,
  isStreamFrame,
  Kind,
  type Outgoing,
  type Parsed,
  parseFrame,
  parseInnerFrame,
  type RequestFrame,
  type ResponseFrame,
  type StreamFrame,
} from './envelope.js';
import { InboundCall } from './inbound.js';
import {
  checkGather,
  checkStreamFrame,
  DEFAULT_FLOW_LIMITS,
  errorOverLimits,
  type FlowLimits,
  refusal,
} from './limits.js';
import { Outbox } from './outbox.js';
import { describeRequest, PendingCalls } from './pending.js';

export type { ControlFrame } from './envelope.js';
export { InboundCall } from './inbound.js';
export { DEFAULT_FLOW_LIMITS, type FlowLimits } from './limits.js';

/** What the owner of a peer handles. */
export interface PeerHandlers {
  /**
   * An inbound request. The owner answers with {@link Peer.reply} or {@link Peer.fail}; `call`
   * aborts when the caller cancels or the peer goes away.
   */
  request(peer: Peer, frame: RequestFrame, call: InboundCall): void;
  /** An inbound event. */
  event(peer: Peer, frame: EventFrame): void;
  /** hello, welcome, ready, handlers, bye. */
  control(peer: Peer, frame: ControlFrame): void;
  /**
   * A frame with our marker but a malformed shape, a protocol violation (`PROTOCOL`), or a frame
   * over the receiver's limits (`PAYLOAD_TOO_LARGE`, `PAYLOAD_TOO_DEEP`): it was refused.
   */
  invalid(peer: Peer, reason: string, code?: BusErrorCode): void;
  /** The link closed; every pending request has been rejected. */
  closed(peer: Peer): void;
  /** A stream's frame (bus/streams.ts); `refused` if over the limits: the owner ends it so. */
  stream?(peer: Peer, frame: StreamFrame, refused?: BusError): void;
}

/** Options of {@link Peer.request}. */
export interface RequestOptions {
  /** Who answers, for messages: a worker id or a description. @default the peer's name */
  readonly to?: number | string | undefined;
  /** What kind of request, for messages. @default 'call' */
  readonly what?: string | undefined;
  readonly timeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** A request as its sender builds it; the peer assigns `i`. */
export type OutgoingRequest = Omit<Outgoing<RequestFrame>, 'i'> & { i?: number };

/** The protocol over one link. */
export class Peer {
  private nextId = 1;
  private readonly pending = new PendingCalls((id) => this.send({ k: Kind.cancel, i: id }, 16));
  private readonly inbound = new Map<number, InboundCall>();
  private readonly unsubscribe: Array<() => void>;
  private closedWith: { code: BusErrorCode; message: string } | undefined;
  /** What is sent, on its way to the link: coalescing, backpressure, `maxQueueBytes`. */
  private readonly outbox: Outbox;
  /** The bounds of what this peer accepts from the other end. */
  private readonly received: PayloadLimits;

  /**
   * @param link - the channel.
   * @param name - who is at the other end, for messages (`worker 3`, `the primary`).
   * @param handlers - the owner's callbacks.
   * @param exitCode - the code pending requests get when the link closes (`TARGET_EXITED` or `CLOSED`).
   * @param limits - coalescing and queue bounds.
   * @param codec - how payloads are checked on receipt and sized (the JSON codec's by default;
   *   a structured-clone link passes its own).
   */
  constructor(
    private readonly link: Link,
    readonly name: string,
    private readonly handlers: PeerHandlers,
    private readonly exitCode: BusErrorCode = 'TARGET_EXITED',
    private readonly limits: FlowLimits = DEFAULT_FLOW_LIMITS,
    private readonly codec: PayloadCodec = JSON_PAYLOADS,
  ) {
    this.received = { maxBytes: limits.maxPayloadBytes, maxDepth: limits.maxDepth };
    this.outbox = new Outbox(link, limits, () =>
      this.close(this.exitCode, `${this.name} is not connected`),
    );
    this.unsubscribe = [
      link.onMessage((m) => this.receive(m)),
      link.onClose(() => this.close(this.exitCode, `${this.name} exited or disconnected`)),
    ];
  }

  /** Whether the peer is closed. */
  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Outbound requests not yet settled. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Inbound requests not yet answered. */
  get inboundCount(): number {
    return this.inbound.size;
  }

  /** Whether the outbound queue is over `maxQueueBytes`: new requests and events are refused. */
  get overloaded(): boolean {
    return this.outbox.overloaded;
  }

  /** About how many bytes wait in the outbound queue (for `maxQueueBytes`, and the metrics). */
  get queuedBytes(): number {
    return this.outbox.queuedBytes;
  }

  /** Frames waiting in the queue, and messages in the channel not yet written (for tests). */
  get backlog(): { readonly queued: number; readonly unwritten: number } {
    return this.outbox.backlog;
  }

  /**
   * Sends a frame, in order: the first frame of a job leaves at once (a lone call waits for
   * nothing); the frames that follow it before the job ends (its promise jobs included: the
   * flush is a `process.nextTick`, which runs after the microtask queue has drained) are
   * coalesced into messages of at most `maxFrames` frames and about `maxBytes` bytes. While the channel
   * has `maxUnwritten` messages not yet written, frames wait in the queue. Returns false if the
   * peer is closed. Never refuses for size: callers check {@link overloaded} first.
   *
   * @param bytes - the frame's approximate size, if the caller knows it.
   */
  send(frame: Outgoing, bytes?: number): boolean {
    return this.outbox.send(frame, bytes);
  }

  /**
   * Hands queued frames to the link while it has room: one frame as itself, several as one
   * batch of at most `maxFrames` frames and about `maxBytes` bytes (a larger frame goes alone).
   */
  flush(): void {
    this.outbox.flush();
  }

  /**
   * Sends a request and settles with its response frame (the owner decodes it), or rejects with a
   * BusError: the peer's error, `TIMEOUT`, `ABORTED`, or the close code.
   */
  request(frame: OutgoingRequest, opts: RequestOptions): Promise<ResponseFrame> {
    return new Promise<ResponseFrame>((resolve, reject) => {
      this.issue(frame, opts, resolve, reject);
    });
  }

  /**
   * Sends a request, settling through callbacks (no promise). Returns its id, for
   * {@link cancel}, or 0 if it was rejected at once.
   */
  issue(
    frame: OutgoingRequest,
    opts: RequestOptions,
    resolve: (frame: ResponseFrame) => void,
    reject: (error: BusError) => void,
  ): number {
    const pendingOpts = {
      resolve,
      reject,
      method: frame.m,
      to: opts.to ?? this.name,
      what: opts.what,
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
    };
    if (this.closedWith !== undefined) {
      const request = describeRequest(pendingOpts);
      reject(new BusError(this.closedWith.code, `${request} failed: ${this.closedWith.message}`));
      return 0;
    }
    if (opts.signal?.aborted) {
      const request = describeRequest(pendingOpts);
      reject(new BusError('ABORTED', `${request} was aborted`, { cause: opts.signal.reason }));
      return 0;
    }
    if (this.overloaded) {
      const request = describeRequest(pendingOpts);
      reject(
        new BusError(
          'OVERLOADED',
          `${request} refused: ${this.outbox.queuedBytes} bytes wait to be sent to ${this.name}, over maxQueueBytes (${this.limits.maxQueueBytes}); it is not keeping up`,
        ),
      );
      return 0;
    }
    const id = this.nextId++;
    this.pending.add(id, pendingOpts);
    frame.i = id;
    this.send(frame as Outgoing<RequestFrame>, this.codec.size(frame));
    return id;
  }

  /** Gives up on request `id`: rejects it with `code` and tells the peer to abort its handler. */
  cancel(id: number, code: BusErrorCode, message: string): void {
    this.pending.fail(id, code, message);
  }

  /** Answers inbound request `id` with an encoded result (or a gather list). Dropped if cancelled. */
  reply(id: number, result: Encoded, gather?: GatherItem[], bytes?: number): void {
    if (!this.inbound.delete(id)) return;
    const out: Outgoing<ResponseFrame> = { k: Kind.response, i: id };
    if (result.p !== undefined) out.p = result.p;
    if (result.q !== undefined) out.q = result.q;
    if (gather !== undefined) out.a = gather;
    this.send(out, bytes ?? (gather === undefined ? this.codec.size(result) : undefined));
  }

  /** Answers inbound request `id` with an error. Dropped if cancelled. */
  fail(id: number, error: BusError): void {
    if (!this.inbound.delete(id)) return;
    this.send({ k: Kind.error, i: id, e: error.toJSON() });
  }

  /** @internal Reads one raw message, as the link delivers it (tests feed it directly). */
  receive(raw: unknown): void {
    if (this.closedWith !== undefined) return;
    const parsed = parseFrame(raw);
    if (!parsed.ok) {
      if (!parsed.foreign) this.handlers.invalid(this, parsed.reason);
      return;
    }
    if (parsed.frame.k !== Kind.batch) {
      this.dispatch(parsed);
      return;
    }
    for (const inner of parsed.frame.f) {
      if (this.closedWith !== undefined) return;
      this.dispatch(parseInnerFrame(inner));
    }
  }

  private dispatch(parsed: Parsed): void {
    if (!parsed.ok) {
      if (!parsed.foreign) this.handlers.invalid(this, parsed.reason);
      return;
    }
    const frame: Frame = parsed.frame;
    switch (frame.k) {
      case Kind.request: {
        if (this.inbound.has(frame.i)) {
          this.handlers.invalid(this, `duplicate request id ${frame.i}`);
          return;
        }
        const refused = this.codec.check(frame, this.received);
        if (refused !== undefined) {
          const error = refusal(`request '${frame.m}'`, this.name, refused);
          this.send({ k: Kind.error, i: frame.i, e: error.toJSON() });
          this.handlers.invalid(this, error.message, error.code);
          return;
        }
        const call = new InboundCall();
        this.inbound.set(frame.i, call);
        this.handlers.request(this, frame, call);
        return;
      }
      case Kind.response: {
        const refused =
          frame.a === undefined
            ? this.codec.check(frame, this.received)
            : checkGather(frame.a, this.received, this, this.handlers);
        if (refused !== undefined) {
          const error = refusal('an answer', this.name, refused);
          if (this.pending.reject(frame.i, error))
            this.handlers.invalid(this, error.message, error.code);
          return;
        }
        this.pending.resolve(frame.i, frame);
        return;
      }
      case Kind.error: {
        const refused = checkValue(frame.e, this.received);
        if (typeof refused !== 'number') {
          const error = refusal('an error answer', this.name, refused);
          if (this.pending.reject(frame.i, error))
            this.handlers.invalid(this, error.message, error.code);
          return;
        }
        this.pending.reject(frame.i, BusError.fromJSON(frame.e));
        return;
      }
      case Kind.cancel: {
        const call = this.inbound.get(frame.i);
        if (call !== undefined) {
          this.inbound.delete(frame.i);
          call.abort(new BusError('ABORTED', `the caller on ${this.name} cancelled the call`));
        }
        return;
      }
      case Kind.event: {
        const refused = this.codec.check(frame, this.received);
        if (refused !== undefined) {
          const error = refusal(`event '${frame.m}'`, this.name, refused);
          this.handlers.invalid(this, `${error.message}; dropped`, error.code);
          return;
        }
        this.handlers.event(this, frame);
        return;
      }
      case Kind.batch:
        this.handlers.invalid(this, 'a batch inside a batch');
        return;
      default: {
        if (isStreamFrame(frame)) {
          const refused = checkStreamFrame(frame, this.received, this.name);
          if (refused !== undefined) this.handlers.invalid(this, refused.message, refused.code);
          this.handlers.stream?.(this, frame, refused);
          return;
        }
        // A welcome's extension map is a payload (its own depth); the rest of a control frame is small.
        const refused =
          frame.k === Kind.welcome && frame.x !== undefined
            ? checkEncoded(frame.x, this.received)
            : errorOverLimits(frame, this.received);
        if (refused !== undefined) {
          const error = refusal(`a '${frame.k}' frame`, this.name, refused);
          this.handlers.invalid(this, error.message, error.code);
          return;
        }
        this.handlers.control(this, frame);
      }
    }
  }

  /**
   * Closes the peer: what is queued is sent if the link is still open; every pending request is
   * rejected with `code`, every inbound one aborted, and the peer detaches from the link.
   * Idempotent.
   */
  close(code: BusErrorCode, message: string): void {
    if (this.closedWith !== undefined) return;
    this.outbox.close(this.link.connected);
    this.closedWith = { code, message };
    for (const u of this.unsubscribe) u();
    this.pending.rejectAll(code, (label) => `${label} failed: ${message}`);
    const reason = new BusError(code, message);
    const inbound = [...this.inbound.values()];
    this.inbound.clear();
    for (const call of inbound) call.abort(reason);
    this.handlers.closed(this);
  }
}
