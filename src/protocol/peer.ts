/**
 * A peer: the protocol spoken over one {@link Link}. It numbers and tracks outbound requests
 * (through {@link PendingCalls}), tracks inbound requests so a cancel or the peer's exit can abort
 * them, and hands every other frame to its owner. It knows nothing of `cluster`.
 *
 * @module
 */
import { BusError, type BusErrorCode } from '../errors.js';
import type { Link } from '../transport/link.js';
import {
  type ByeFrame,
  type Encoded,
  type EventFrame,
  type Frame,
  type GatherItem,
  type HandlersFrame,
  type HelloFrame,
  Kind,
  type Outgoing,
  parseFrame,
  type RequestFrame,
  type ResponseFrame,
  seal,
  type WelcomeFrame,
} from './envelope.js';
import { PendingCalls } from './pending.js';

/** Frames a peer hands to its owner untouched. */
export type ControlFrame = HelloFrame | WelcomeFrame | HandlersFrame | ByeFrame;

/** What the owner of a peer handles. */
export interface PeerHandlers {
  /**
   * An inbound request. The owner answers with {@link Peer.reply} or {@link Peer.fail}; `signal`
   * aborts when the caller cancels or the peer goes away.
   */
  request(peer: Peer, frame: RequestFrame, signal: AbortSignal): void;
  /** An inbound event. */
  event(peer: Peer, frame: EventFrame): void;
  /** hello, welcome, handlers, bye. */
  control(peer: Peer, frame: ControlFrame): void;
  /** A frame with our marker but a malformed shape, or a protocol violation. */
  invalid(peer: Peer, reason: string): void;
  /** The link closed; every pending request has been rejected. */
  closed(peer: Peer): void;
}

/** Options of {@link Peer.request}. */
export interface RequestOptions {
  /** For messages, e.g. `call 'add' to worker 2`. */
  readonly label: string;
  readonly timeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly site?: Error | undefined;
}

/** The protocol over one link. */
export class Peer {
  private nextId = 1;
  private readonly pending = new PendingCalls();
  private readonly inbound = new Map<number, AbortController>();
  private readonly unsubscribe: Array<() => void>;
  private closedWith: { code: BusErrorCode; message: string } | undefined;

  /**
   * @param link - the channel.
   * @param name - who is at the other end, for messages (`worker 3`, `the primary`).
   * @param handlers - the owner's callbacks.
   * @param exitCode - the code pending requests get when the link closes (`TARGET_EXITED` or `CLOSED`).
   */
  constructor(
    private readonly link: Link,
    readonly name: string,
    private readonly handlers: PeerHandlers,
    private readonly exitCode: BusErrorCode = 'TARGET_EXITED',
  ) {
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

  /** Sends a frame; false if the link is closed. */
  send(frame: Outgoing): boolean {
    if (this.closedWith !== undefined) return false;
    return this.link.send(seal(frame));
  }

  /**
   * Sends a request and settles with its response frame (the owner decodes it), or rejects with a
   * BusError: the peer's error, `TIMEOUT`, `ABORTED`, or the close code.
   */
  request(
    frame: Omit<RequestFrame, '$cb' | 'k' | 'i'>,
    opts: RequestOptions,
  ): Promise<ResponseFrame> {
    return new Promise<ResponseFrame>((resolve, reject) => {
      if (this.closedWith !== undefined) {
        reject(
          new BusError(this.closedWith.code, `${opts.label} failed: ${this.closedWith.message}`),
        );
        return;
      }
      if (opts.signal?.aborted) {
        reject(new BusError('ABORTED', `${opts.label} was aborted`, { cause: opts.signal.reason }));
        return;
      }
      const id = this.nextId++;
      this.pending.add(id, {
        resolve,
        reject,
        label: opts.label,
        timeoutMs: opts.timeoutMs,
        signal: opts.signal,
        site: opts.site,
        onGiveUp: () => this.send({ k: Kind.cancel, i: id }),
      });
      const out: Outgoing<RequestFrame> = { k: Kind.request, i: id, ...frame };
      if (!this.link.send(seal(out))) {
        this.pending.reject(
          id,
          new BusError(this.exitCode, `${opts.label} failed: ${this.name} is not connected`),
        );
      }
    });
  }

  /** Answers inbound request `id` with an encoded result (or a gather list). Dropped if cancelled. */
  reply(id: number, result: Encoded, gather?: GatherItem[]): void {
    if (!this.inbound.delete(id)) return;
    const out: Outgoing<ResponseFrame> = { k: Kind.response, i: id };
    if (result.p !== undefined) out.p = result.p;
    if (result.q !== undefined) out.q = result.q;
    if (gather !== undefined) out.a = gather;
    this.send(out);
  }

  /** Answers inbound request `id` with an error. Dropped if cancelled. */
  fail(id: number, error: BusError): void {
    if (!this.inbound.delete(id)) return;
    this.send({ k: Kind.error, i: id, e: error.toJSON() });
  }

  private receive(raw: unknown): void {
    if (this.closedWith !== undefined) return;
    const parsed = parseFrame(raw);
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
        const controller = new AbortController();
        this.inbound.set(frame.i, controller);
        this.handlers.request(this, frame, controller.signal);
        return;
      }
      case Kind.response:
        this.pending.resolve(frame.i, frame);
        return;
      case Kind.error:
        this.pending.reject(frame.i, BusError.fromJSON(frame.e));
        return;
      case Kind.cancel: {
        const controller = this.inbound.get(frame.i);
        if (controller !== undefined) {
          this.inbound.delete(frame.i);
          controller.abort(
            new BusError('ABORTED', `the caller on ${this.name} cancelled the call`),
          );
        }
        return;
      }
      case Kind.event:
        this.handlers.event(this, frame);
        return;
      default:
        this.handlers.control(this, frame);
    }
  }

  /**
   * Closes the peer: rejects every pending request with `code`, aborts every inbound one, and
   * detaches from the link. Idempotent.
   */
  close(code: BusErrorCode, message: string): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = { code, message };
    for (const u of this.unsubscribe) u();
    this.pending.rejectAll(code, (label) => `${label} failed: ${message}`);
    const reason = new BusError(code, message);
    for (const controller of this.inbound.values()) controller.abort(reason);
    this.inbound.clear();
    this.handlers.closed(this);
  }
}
