/**
 * The transport boundary: what the protocol needs of a channel to one peer. Two functions and a
 * close notification; adapters hold no protocol logic.
 *
 * @module
 */

/** A channel to one peer process (or an in-memory stand-in). */
export interface Link {
  /**
   * Sends one message. Returns `false` when the channel is closed and nothing was sent. Never
   * throws. Ordering is what the channel guarantees (Node's IPC channel: in send order).
   *
   * @param written - called once the channel has written the message out (or failed to): the
   *   flow-control signal, as Node's `process.send` callback is.
   */
  send(message: unknown, written: () => void): boolean;
  /** Subscribes to every message received; returns the unsubscribe function. */
  onMessage(listener: (message: unknown) => void): () => void;
  /** Subscribes to the channel closing (peer exit or disconnect); fires once. */
  onClose(listener: () => void): () => void;
  /** Whether the channel is still open. */
  readonly connected: boolean;
}
