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
import { Kind } from '../protocol/envelope.js';
import type { Link } from '../transport/link.js';

/** The key of a frame's transfer list. */
export const TRANSFER: unique symbol = Symbol('clusterbus.transfer');

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

  constructor(
    private readonly port: PortLike,
    closer: { once(event: string, listener: () => void): unknown },
    closeEvent: string,
    private readonly refused: (message: Framed, error: unknown) => void,
  ) {
    port.on('message', this.onPortMessage);
    closer.once(closeEvent, () => this.shut());
  }

  get connected(): boolean {
    return this.open;
  }

  private readonly onPortMessage = (message: unknown): void => {
    for (const l of this.listeners) l(message);
  };

  send(message: unknown, written: () => void): boolean {
    if (!this.open) return false;
    try {
      this.port.postMessage(message, transferOf(message as Framed));
    } catch (error) {
      this.refused(message as Framed, error);
    }
    written();
    return true;
  }

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
    this.open = false;
    this.port.off('message', this.onPortMessage);
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    this.listeners.clear();
    for (const l of listeners) l();
  }
}
