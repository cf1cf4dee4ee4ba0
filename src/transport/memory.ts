/**
 * An in-memory pair of links for unit tests of protocol logic. Messages are delivered
 * asynchronously, in order, after a JSON round trip, the way Node's IPC channel delivers them:
 * the messages sent in one tick arrive together, each emitted in its own `process.nextTick`, so
 * no promise job runs between them (Node emits every message of one read that way).
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

  /** While true, nothing is written (as a peer that stopped reading): tests of backpressure. */
  stalled = false;
  private readonly backlog: Array<() => void> = [];

  send(message: unknown, written: () => void): boolean {
    const other = this.other;
    if (!this.open || other === undefined) return false;
    const copy: unknown = JSON.parse(JSON.stringify(message));
    const deliver = () => {
      this.outbox.push(() => {
        other.deliver(copy);
        written();
      });
      if (this.outbox.length === 1) setImmediate(this.drainOutbox);
    };
    if (this.stalled) this.backlog.push(deliver);
    else deliver();
    return true;
  }

  /** Messages written in this tick, delivered together by {@link drainOutbox}. */
  private readonly outbox: Array<() => void> = [];

  private readonly drainOutbox = (): void => {
    for (const run of this.outbox.splice(0)) process.nextTick(run);
  };

  /** Resumes writing after {@link stalled}. */
  resume(): void {
    this.stalled = false;
    for (const d of this.backlog.splice(0)) d();
  }

  deliver(message: unknown): void {
    if (!this.open) return;
    // A copy, as EventEmitter does: a listener added while delivering does not get this message.
    for (const l of [...this.messageListeners]) l(message);
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
/** An in-memory link, with test controls. */
export interface TestLink extends Link {
  listenerCount(): number;
  /** While true, messages are held, unwritten, as when the peer stops reading. */
  stalled: boolean;
  /** Writes what was held and stops stalling. */
  resume(): void;
}

export interface MemoryPair {
  readonly a: TestLink;
  readonly b: TestLink;
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
