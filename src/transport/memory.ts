/**
 * An in-memory pair of links for unit tests of protocol logic. Messages are delivered
 * asynchronously, in order, after a JSON round trip, as Node's IPC channel would deliver them.
 *
 * @module
 */
import type { Link } from './link.js';

class MemoryLink implements Link {
  other: MemoryLink | undefined;
  private readonly messageListeners = new Set<(m: unknown) => void>();
  private readonly closeListeners = new Set<() => void>();
  private open = true;

  get connected(): boolean {
    return this.open;
  }

  send(message: unknown): boolean {
    const other = this.other;
    if (!this.open || other === undefined) return false;
    const copy: unknown = JSON.parse(JSON.stringify(message));
    setImmediate(() => other.deliver(copy));
    return true;
  }

  deliver(message: unknown): void {
    if (!this.open) return;
    for (const l of this.messageListeners) l(message);
  }

  onMessage(listener: (m: unknown) => void): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  onClose(listener: () => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  shut(): void {
    if (!this.open) return;
    this.open = false;
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    this.messageListeners.clear();
    for (const l of listeners) l();
  }

  listenerCount(): number {
    return this.messageListeners.size + this.closeListeners.size;
  }
}

/** Two connected in-memory links and a way to cut them, as a peer's exit would. */
export interface MemoryPair {
  readonly a: Link & { listenerCount(): number };
  readonly b: Link & { listenerCount(): number };
  /** Closes both ends, as the death of either process would. */
  cut(): void;
}

/** Makes a connected in-memory pair. */
export function memoryPair(): MemoryPair {
  const a = new MemoryLink();
  const b = new MemoryLink();
  a.other = b;
  b.other = a;
  return {
    a,
    b,
    cut() {
      a.shut();
      b.shut();
    },
  };
}
