/**
 * The other half of a transport: who is there. A {@link Link} is the channel to one peer; a
 * Membership says who this process is and which peers join and go, each with its link. The hub
 * takes its workers' links from its membership, a worker its link to the hub; a new transport
 * (worker threads, NATS) is a Link and a Membership.
 *
 * @module
 */
import type { PeerId } from '../core/extension.js';
import type { Link } from './link.js';

/** Who is there, as one transport sees it. */
export interface Membership {
  /** This process's id: `HUB_ID` for the hub, its worker id for a worker. */
  readonly self: PeerId;
  /**
   * Calls `listener` with each peer that joins and the link to it, from now on. The link is
   * handed over before anything can arrive on it. Returns the remover.
   */
  onJoined(listener: (id: PeerId, link: Link) => void): () => void;
  /** Calls `listener` once a joined peer's link has closed. Returns the remover. */
  onGone(listener: (id: PeerId) => void): () => void;
  /** Stops watching for peers (the links already handed over are their owners'). Idempotent. */
  close(): void;
}

/**
 * A membership fed by hand: {@link ManualMembership.join} hands a peer's link to the listeners.
 * For transports whose peers are made by someone else, and for tests over in-memory links.
 */
export class ManualMembership implements Membership {
  private readonly joined = new Set<(id: PeerId, link: Link) => void>();
  private readonly gone = new Set<(id: PeerId) => void>();
  private closed = false;

  /** @param self - this process's id. */
  constructor(readonly self: PeerId) {}

  onJoined(listener: (id: PeerId, link: Link) => void): () => void {
    this.joined.add(listener);
    return () => this.joined.delete(listener);
  }

  onGone(listener: (id: PeerId) => void): () => void {
    this.gone.add(listener);
    return () => this.gone.delete(listener);
  }

  /** Peer `id` joined over `link`; its going is told when the link closes. Ignored once closed. */
  join(id: PeerId, link: Link): void {
    if (this.closed) return;
    for (const l of [...this.joined]) l(id, link);
    link.onClose(() => {
      if (!this.closed) for (const l of [...this.gone]) l(id);
    });
  }

  close(): void {
    this.closed = true;
    this.joined.clear();
    this.gone.clear();
  }
}
