/**
 * The outbound queue of a peer (`protocol/peer.ts`): it coalesces the frames sent in one tick
 * into batches bounded by frames and bytes, holds them while the channel has too many messages
 * not yet written (backpressure), and counts the bytes waiting, for `maxQueueBytes`.
 *
 * @module
 */
import type { Link } from '../transport/link.js';
import { checkValue, encodedSize, MAX_MAX_DEPTH, type PayloadLimits } from './codec.js';
import { type Encoded, Kind, MARKER, type Outgoing, PROTOCOL_VERSION } from './envelope.js';
import type { FlowLimits } from './limits.js';

/** The frames a peer sends, on their way to its link. */
export class Outbox {
  /** Frames not yet handed to the link ("queued"), with their approximate sizes. */
  private queue: Outgoing[] = [];
  private sizes: number[] = [];
  private bytes = 0;
  private flushScheduled = false;
  /** Messages handed to the link and not yet written out ("in the channel"). */
  private unwritten = 0;
  /** The queue stopped flushing because `maxUnwritten` messages were not yet written. */
  private held = false;
  /** Set by {@link close}: nothing more is written. */
  private closed = false;

  /**
   * @param link - the channel.
   * @param limits - coalescing and queue bounds (the received ones are the peer's).
   * @param broken - called when the link refuses a message (it is not connected).
   */
  constructor(
    private readonly link: Link,
    private readonly limits: FlowLimits,
    private readonly broken: () => void,
  ) {}

  /** About how many bytes wait in the queue. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** Whether the queue is over `maxQueueBytes`. */
  get overloaded(): boolean {
    return this.bytes >= this.limits.maxQueueBytes;
  }

  /** Frames waiting in the queue, and messages in the channel not yet written. */
  get backlog(): { readonly queued: number; readonly unwritten: number } {
    return { queued: this.queue.length, unwritten: this.unwritten };
  }

  /**
   * Sends a frame, in order (see `Peer.send`). Returns false if the outbox is closed, or was
   * closed because the link refused the frame.
   *
   * @param bytes - the frame's approximate size, if the caller knows it.
   */
  send(frame: Outgoing, bytes?: number): boolean {
    if (this.closed) return false;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.scheduledFlush);
      if (this.queue.length === 0 && this.unwritten < this.limits.maxUnwritten) {
        this.write({ [MARKER]: PROTOCOL_VERSION, ...frame });
        return !this.closed;
      }
    }
    const size = bytes ?? estimate(frame);
    this.queue.push(frame);
    this.sizes.push(size);
    this.bytes += size;
    if (this.queue.length >= this.limits.maxFrames || this.bytes >= this.limits.maxBytes) {
      this.flush();
    }
    return true;
  }

  private readonly scheduledFlush = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /**
   * Called by the link as each message is written out. Resumes a queue that backpressure held
   * (otherwise the end-of-tick flush does it, so that batches stay full).
   */
  private readonly written = (): void => {
    this.unwritten--;
    if (this.held && this.unwritten < this.limits.maxUnwritten) {
      this.held = false;
      this.flush();
    }
  };

  /**
   * Hands queued frames to the link while it has room: one frame as itself, several as one
   * batch of at most `maxFrames` frames and about `maxBytes` bytes (a larger frame goes alone).
   */
  flush(): void {
    const { maxFrames, maxBytes, maxUnwritten } = this.limits;
    const queue = this.queue;
    const sizes = this.sizes;
    let start = 0;
    while (start < queue.length && this.unwritten < maxUnwritten && !this.closed) {
      let end = start;
      let bytes = 0;
      while (
        end < queue.length &&
        end - start < maxFrames &&
        (end === start || bytes + sizes[end]! <= maxBytes)
      ) {
        bytes += sizes[end]!;
        end++;
      }
      this.bytes -= bytes;
      if (end - start === 1) this.write({ [MARKER]: PROTOCOL_VERSION, ...queue[start]! });
      else this.write({ [MARKER]: PROTOCOL_VERSION, k: Kind.batch, f: queue.slice(start, end) });
      start = end;
    }
    if (start < queue.length && this.unwritten >= maxUnwritten) this.held = true;
    if (start === 0 || this.queue !== queue) return;
    if (start >= queue.length) {
      this.queue = [];
      this.sizes = [];
      this.bytes = 0;
    } else {
      this.queue = queue.slice(start);
      this.sizes = sizes.slice(start);
    }
  }

  private write(message: object): void {
    if (this.closed) return;
    this.unwritten++;
    if (!this.link.send(message, this.written)) {
      this.unwritten--;
      this.broken();
    }
  }

  /**
   * Closes the outbox: what is queued is sent first if `flushFirst`, the rest is dropped, and
   * nothing more is written.
   */
  close(flushFirst: boolean): void {
    if (flushFirst) this.flush();
    this.queue = [];
    this.sizes = [];
    this.bytes = 0;
    this.closed = true;
  }
}

const UNBOUNDED: PayloadLimits = { maxBytes: Number.POSITIVE_INFINITY, maxDepth: MAX_MAX_DEPTH };

/** A frame's size for the queue bounds: its payload's (recorded when encoded or received). */
function estimate(frame: Outgoing): number {
  if ('p' in frame || 'q' in frame) return encodedSize(frame as Encoded);
  if ('e' in frame) {
    const size = checkValue(frame.e, UNBOUNDED);
    return 32 + (typeof size === 'number' ? size : 0);
  }
  return 32;
}
