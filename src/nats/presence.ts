/**
 * Who is in the mesh: the table of nodes heard from (their workers, contract hash, when last
 * heard), fed by presence heartbeats, swept every heartbeat. A node not heard for `goneAfterMs`
 * is gone until heard again.
 *
 * @module
 */
import type { MeshNode } from '../core/mesh.js';
import type { WirePresence } from './wire.js';

interface NodeState {
  workers: Array<{ id: number; handles: string[] }>;
  lastHeardAt: number;
  hash: string;
  gone: boolean;
}

/** The nodes of the mesh as this node sees them. */
export class Presence {
  private readonly nodes = new Map<string, NodeState>();

  /**
   * @param self - this node's name.
   * @param hash - this node's contract hash.
   * @param goneAfterMs - silence after which a node is gone.
   * @param events - told when a node joins (first heard, or heard again) or goes.
   */
  constructor(
    readonly self: string,
    private readonly hash: string,
    private readonly goneAfterMs: number,
    private readonly events: {
      joined(node: string, mismatch: boolean): void;
      gone(node: string): void;
    },
  ) {}

  /** A heartbeat from another node. */
  heard(p: WirePresence, now = Date.now()): void {
    if (p.n === this.self) return;
    if (p.b === 1) {
      this.leave(p.n);
      return;
    }
    const state = this.nodes.get(p.n);
    const workers = p.w.map(([id, handles]) => ({ id, handles }));
    if (state === undefined || state.gone) {
      this.nodes.set(p.n, { workers, lastHeardAt: now, hash: p.h, gone: false });
      this.events.joined(p.n, p.h !== this.hash);
      return;
    }
    state.workers = workers;
    state.lastHeardAt = now;
    state.hash = p.h;
  }

  /** A node that said goodbye, or that we stopped hearing. */
  private leave(node: string): void {
    const state = this.nodes.get(node);
    if (state === undefined || state.gone) return;
    state.gone = true;
    state.workers = [];
    this.events.gone(node);
  }

  /** Marks the nodes not heard for `goneAfterMs` as gone. */
  sweep(now = Date.now()): void {
    for (const [node, state] of this.nodes) {
      if (!state.gone && now - state.lastHeardAt > this.goneAfterMs) this.leave(node);
    }
  }

  /** Whether `node` was heard and then went (calls to it are refused at once). */
  isGone(node: string): boolean {
    return this.nodes.get(node)?.gone === true;
  }

  /** Whether `node`'s contract differs from this node's. */
  mismatch(node: string): boolean {
    const state = this.nodes.get(node);
    return state !== undefined && !state.gone && state.hash !== this.hash;
  }

  /** The other nodes that are live and share this node's contract, by name. */
  live(): string[] {
    const out: string[] = [];
    for (const [node, s] of this.nodes) if (!s.gone && s.hash === this.hash) out.push(node);
    return out.sort();
  }

  /** Workers of live node `node`, as its last heartbeat said. */
  workersOf(node: string): number[] {
    const s = this.nodes.get(node);
    return s === undefined || s.gone ? [] : s.workers.map((w) => w.id);
  }

  /** The view of `app.mesh.nodes()`, with this node's own entry first. */
  view(own: MeshNode['workers']): MeshNode[] {
    const now = Date.now();
    const out: MeshNode[] = [
      { node: this.self, self: true, workers: own, lastHeardAt: now, contractMismatch: false },
    ];
    for (const [node, s] of [...this.nodes].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (s.gone) continue;
      out.push({
        node,
        self: false,
        workers: s.workers,
        lastHeardAt: s.lastHeardAt,
        contractMismatch: s.hash !== this.hash,
      });
    }
    return out;
  }
}
