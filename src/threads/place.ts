/**
 * One place of a pool: the thread now at an index, its {@link Peer}, the calls it serves, the
 * cancelled calls whose handler has not returned yet, and its replacement history.
 *
 * @module
 */
import type { Peer } from '../protocol/peer.js';
import type { Deadline } from '../util/duration.js';
import type { ThreadStats } from './registry.js';
import type { ThreadHandle } from './slots.js';

/** The thread at one index of a pool. */
export class Place {
  handle: ThreadHandle | undefined;
  peer: Peer | undefined;
  /** Connected and taking calls. */
  ready = false;
  /** Ever ready since the pool started (failures before that are start failures). */
  everReady = false;
  /** Cancelled calls (by id) whose handler has not returned, each with its grace deadline. */
  readonly lingering = new Map<number, Deadline>();
  served = 0;
  restarts = 0;
  /** Crashes in a row, for the backoff. */
  crashes = 0;
  /** Failures before ready in a row, while the pool starts. */
  startFailures = 0;
  readyAt = 0;
  /** The thread was terminated on purpose (a handler past its grace): replaced at once. */
  planned = false;
  respawn: NodeJS.Timeout | undefined;

  constructor(readonly index: number) {}

  /** Calls that count against the thread: in flight, and cancelled but still running. */
  get load(): number {
    return (this.peer?.pendingCount ?? 0) + this.lingering.size;
  }

  /**
   * Whether the thread takes a new call: it is ready, has fewer than `max` in flight, and no
   * cancelled call is still running on it (it may be replaced once that call's grace is over).
   */
  takes(max: number): boolean {
    return this.ready && this.lingering.size === 0 && this.load < max;
  }

  /** Forgets the cancelled calls (the thread is gone). */
  clearLingering(): void {
    for (const d of this.lingering.values()) d.clear();
    this.lingering.clear();
  }

  stats(): ThreadStats {
    return {
      thread: this.index,
      ...(this.handle === undefined ? {} : { threadId: this.handle.id }),
      ready: this.ready,
      inFlight: this.load,
      callsServed: this.served,
      restarts: this.restarts,
    };
  }
}
