/** An in-memory primary + workers harness for protocol unit tests: no processes, no cluster. */
import { PrimaryBus } from '../../src/bus/primary.js';
import { WorkerBus } from '../../src/bus/worker.js';
import type { Contract } from '../../src/contract.js';
import { type MemoryPair, memoryPair } from '../../src/transport/memory.js';

export { rejection } from '../rejection.js';

export interface Harness<C extends Contract> {
  readonly primary: PrimaryBus<C>;
  readonly workers: WorkerBus<C>[];
  readonly pairs: MemoryPair[];
  /** Cuts worker `index`'s link, as its death would. */
  kill(index: number): void;
  /** Closes everything and returns what is left pending (should be 0). */
  close(): Promise<number>;
}

/** Starts a primary bus and `count` worker buses (ids 1..count) joined by in-memory links. */
export async function harness<C extends Contract>(
  contract: C,
  count: number,
  options: { callTimeoutMs?: number; maxPayloadBytes?: number; maxQueueBytes?: number } = {},
): Promise<Harness<C>> {
  let ready = 0;
  let allReady!: () => void;
  const readyPromise = new Promise<void>((r) => (allReady = r));
  // Routable once the primary has the worker's 'ready', as startCluster waits for.
  const primary = new PrimaryBus(contract, options, {
    connected: () => {
      if (++ready === count) allReady();
    },
  });
  const workers: WorkerBus<C>[] = [];
  const pairs: MemoryPair[] = [];
  for (let id = 1; id <= count; id++) {
    const pair = memoryPair();
    pairs.push(pair);
    primary.attachLink(id, pair.a);
    workers.push(new WorkerBus(contract, pair.b, id, options, () => {}));
  }
  await readyPromise;
  primary.release(); // as startCluster does once every worker is ready
  return {
    primary,
    workers,
    pairs,
    kill(index) {
      pairs[index]!.cut();
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await primary.close();
      return primary.pendingCount + workers.reduce((n, w) => n + w.pendingCount, 0);
    },
  };
}

/** Waits until `check` returns true, polling every 5 ms, failing after `ms`. */
export async function until(check: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
