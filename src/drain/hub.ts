/**
 * The hub's side of the drain extension, draining one worker: no new `'any'` calls go to it; it
 * is told to drain (`$drain.start`: its servers stop accepting and finish their requests, its
 * in-flight calls settle); the calls in flight to it settle; then its channel is closed (Node's
 * `worker.disconnect()`) and it exits. Whatever is still alive at the deadline is killed.
 *
 * @module
 */
import type { ExtensionContext, PeerId } from '../core/extension.js';
import { sleep } from '../util/sleep.js';
import { DrainVerb } from './types.js';

/** How often the hub looks at the calls in flight to a draining worker, in ms. */
const POLL_MS = 10;

/** The process of a worker being drained: what Node's `cluster.Worker` offers, by shape. */
export interface DrainProcess {
  /** Its id on the bus. */
  readonly id: PeerId;
  /** Whether its process has exited or been killed. */
  isDead(): boolean;
  /** Whether its IPC channel is still open. */
  isConnected(): boolean;
  /** Closes its IPC channel: it exits once nothing else keeps it alive. */
  disconnect(): void;
}

/** What draining one worker needs. */
export interface DrainTarget {
  readonly worker: DrainProcess;
  /** Resolves when the worker's process has exited. */
  readonly exited: Promise<void>;
  /** Kills the worker with SIGKILL (at the deadline, if it is still alive). */
  readonly kill: () => void;
}

/** @internal The drain extension's hub API, used by the supervisor. */
export class DrainHub {
  /** @internal Made by the drain extension's hub side. */
  constructor(private readonly ctx: ExtensionContext) {}

  /** Marks worker `id` as draining (or not): `'any'` calls avoid it. */
  setDraining(id: PeerId, draining: boolean): void {
    this.ctx.peers.setDraining(id, draining);
  }

  /**
   * Drains `target.worker` and resolves once it has exited: gracefully, or killed at
   * `deadline` (a `performance.now()` time). Never rejects.
   */
  async drain(target: DrainTarget, deadline: number): Promise<void> {
    const { worker, exited } = target;
    const id = worker.id;
    this.setDraining(id, true);
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    const killTimer = setTimeout(
      () => {
        if (!gone && !worker.isDead()) target.kill();
      },
      Math.max(0, deadline - performance.now()),
    );
    try {
      const remaining = Math.max(1, Math.floor(deadline - performance.now()));
      // The worker answers once its drain handlers are done and its own calls have settled. A
      // worker that is not connected (starting, or its bus closed) or blocked is not waited for
      // beyond the deadline.
      await this.ctx
        .call(id, DrainVerb.start, { timeoutMs: remaining }, { timeoutMs: remaining })
        .catch(() => {});
      while (!gone && this.ctx.peers.inFlight(id) > 0 && performance.now() < deadline) {
        await sleep(POLL_MS);
      }
      if (!gone && worker.isConnected()) worker.disconnect();
      await exited;
    } finally {
      clearTimeout(killTimer);
    }
  }
}
