/**
 * The primary's side of draining one worker: no new `'any'` calls go to it; it is told to drain
 * (`$drain`: its servers stop accepting and finish their requests, its in-flight calls settle);
 * the calls in flight to it settle; then Node's `worker.disconnect()` closes its channel and it
 * exits. Whatever is still alive at the deadline is killed with SIGKILL.
 *
 * @module
 */
import type { Worker } from 'node:cluster';
import type { PrimaryBus } from '../bus/primary.js';
import type { Contract } from '../contract.js';

/** @internal The system method a worker drains itself with. */
export const DRAIN_METHOD = '$drain';

/** How often the primary looks at the calls in flight to a draining worker, in ms. */
const POLL_MS = 10;

/** What draining one worker needs. */
export interface DrainTarget {
  readonly bus: PrimaryBus<Contract>;
  readonly worker: Worker;
  /** Resolves when the worker's process has exited. */
  readonly exited: Promise<void>;
  /** Kills the worker with SIGKILL (at the deadline, if it is still alive). */
  readonly kill: () => void;
}

/**
 * Drains `target.worker` and resolves once it has exited: gracefully, or killed at
 * `deadline` (a `performance.now()` time). Never rejects.
 */
export async function drainWorker(target: DrainTarget, deadline: number): Promise<void> {
  const { bus, worker, exited } = target;
  const id = worker.id;
  bus.setDraining(id, true);
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
    await bus
      .systemCall(DRAIN_METHOD, id, { timeoutMs: remaining }, { timeoutMs: remaining })
      .catch(() => {});
    while (!gone && bus.inFlightTo(id) > 0 && performance.now() < deadline) {
      await sleep(POLL_MS);
    }
    if (!gone && worker.isConnected()) worker.disconnect();
    await exited;
  } finally {
    clearTimeout(killTimer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
