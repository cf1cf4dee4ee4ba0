/**
 * The worker-threads transport's link: a {@link Link} over a `Worker` (the pool's side) or the
 * thread's `parentPort`. Values travel by structured clone, as `postMessage` copies them: no JSON
 * and no superjson on this link. A frame may carry a transfer list under {@link TRANSFER} (a
 * symbol key, which structured clone leaves out); the link hands it to `postMessage`, so the
 * ArrayBuffers and MessagePorts in it move instead of being copied.
 *
 * @module
 */
import type { Transferable } from 'node:worker_threads';
import type { PayloadCodec } from '../protocol/codec.js';
import { Kind, MARKER, PROTOCOL_VERSION } from '../protocol/envelope.js';
import type { Link } from '../transport/link.js';

/** The key of a frame's transfer list. */
export const TRANSFER: unique symbol = Symbol('clusterbus.transfer');

/** At most this many frames in one coalesced `postMessage`. */
export const MAX_BATCH = 64;

/**
 * A held message waits at most about this long, in ms: past it, it is posted before the next
 * message is read or with the next one sent. Quick answers travel together; the answer of a call
 * does not wait behind the next call's work.
 */
export const MAX_HOLD_MS = 0.25;

/** What the link needs of a port: a `Worker` or a `MessagePort` (`parentPort`). */
export interface PortLike {
  postMessage(value: unknown, transferList?: readonly Transferable[]): void;
  on(event: 'message', listener: (value: unknown) => void): unknown;
  off(event: 'message', listener: (value: unknown) => void): unknown;
}

/**
 * Payload checks on a structured-clone link: none. The values were copied by V8 within this
 * process, there is no JSON text to bound, and a thread's memory is bounded by its
 * `resourceLimits`. Every frame counts as 64 bytes for the outbox's queue bounds.
 */
export const CLONE_PAYLOADS: PayloadCodec = { check: () => undefined, size: () => 64 };

/** A message as the outbox hands it over: a frame or a batch of frames. */
export type Framed = Record<PropertyKey, unknown>;

function transferOf(message: Framed): Transferable[] | undefined {
  const own = message[TRANSFER] as Transferable[] | undefined;
  if (message.k !== Kind.batch) return own;
  let all: Transferable[] | undefined;
  for (const inner of message.f as Framed[]) {
    const list = inner[TRANSFER] as Transferable[] | undefined;
    if (list === undefined) continue;
    all ??= [];
    all.push(...list);
  }
  return all;
}

/**
 * A link over `port`. It closes when `closeEvent` fires on `closer` (a Worker's `exit`, a port's
 * `close`), or by {@link PortLink.shut}. A message `postMessage` refuses (a value structured
 * clone cannot copy, a detached buffer in the transfer list) is handed to `refused`, for its
 * owner to fail that frame's call: the link itself stays open.
 */
export class PortLink implements Link {
  private readonly listeners = new Set<(message: unknown) => void>();
  private readonly closeListeners = new Set<() => void>();
  private open = true;
  /** Messages held for one `postMessage` (with `coalesce`), flushed by `setImmediate`. */
  private held: Framed[] = [];
  /** When the oldest held message was sent (performance.now()). */
  private heldSince = 0;
  private flushing: NodeJS.Immediate | undefined;

  /**
   * @param coalesce - hold the messages sent while this event-loop turn lasts (Node emits each
   *   message of a port in its own callback, so a tick-based flush would send them one by one)
   *   and post them as one batch frame, at most {@link MAX_BATCH} at a time, none held longer
   *   than about {@link MAX_HOLD_MS}.
   */
  constructor(
    private readonly port: PortLike,
    closer: { once(event: string, listener: () => void): unknown },
    closeEvent: string,
    private readonly refused: (message: Framed, error: unknown) => void,
    private readonly coalesce = false,
  ) {
    port.on('message', this.onPortMessage);
    closer.once(closeEvent, () => this.shut());
  }

  get connected(): boolean {
    return this.open;
  }

  private readonly onPortMessage = (message: unknown): void => {
    // Held answers do not wait behind the next call's work (a handler that runs for a while).
    if (this.held.length > 0 && performance.now() - this.heldSince >= MAX_HOLD_MS) this.flush();
    for (const l of this.listeners) l(message);
  };

  send(message: unknown, written: () => void): boolean {
    if (!this.open) return false;
    if (this.coalesce && (message as Framed).k !== Kind.batch) {
      const now = performance.now();
      if (this.held.length === 0) this.heldSince = now;
      this.held.push(message as Framed);
      if (this.held.length >= MAX_BATCH || now - this.heldSince >= MAX_HOLD_MS) this.flush();
      else this.flushing ??= setImmediate(this.flush);
    } else {
      this.post(message as Framed);
    }
    written();
    return true;
  }

  private post(message: Framed): void {
    try {
      this.port.postMessage(message, transferOf(message));
    } catch (error) {
      this.refused(message, error);
    }
  }

  /** Posts the held messages: one alone, several as one batch (each alone if the batch fails). */
  private readonly flush = (): void => {
    if (this.flushing !== undefined) clearImmediate(this.flushing);
    this.flushing = undefined;
    const held = this.held;
    this.held = [];
    if (!this.open || held.length === 0) return;
    if (held.length === 1) {
      this.post(held[0]!);
      return;
    }
    const batch: Framed = { [MARKER]: PROTOCOL_VERSION, k: Kind.batch, f: held };
    try {
      this.port.postMessage(batch, transferOf(batch));
    } catch {
      for (const m of held) this.post(m); // find the one structured clone refuses
    }
  };

  onMessage(listener: (message: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onClose(listener: () => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Closes the link: no more sends, the close listeners run once. Idempotent. */
  shut(): void {
    if (!this.open) return;
    this.flush();
    this.open = false;
    this.port.off('message', this.onPortMessage);
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    this.listeners.clear();
    for (const l of listeners) l();
  }
}
