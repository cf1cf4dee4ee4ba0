/** Shared helpers of the thread-pool tests: start the fixture pool, close it and check nothing is left. */
import { expect } from 'vitest';
import { createPool, type Pool, type PoolOptions } from '../../src/threads/index.js';
import { fixture } from './fixtures/threads/boot.js';
import { contract } from './fixtures/threads/contract.js';

export type FixturePool = Pool<typeof contract>;

/** Starts a pool of the fixture thread (2 threads unless told). */
export function startPool(
  options: Partial<PoolOptions<typeof contract>> = {},
): Promise<FixturePool> {
  return createPool({ contract, file: fixture('worker.ts'), threads: 2, ...options });
}

/** Closes `pool` and checks the leak invariants: no call pending or queued, no thread running. */
export async function closePool(pool: FixturePool | undefined): Promise<void> {
  if (pool === undefined) return;
  await pool.close();
  const stats = pool.stats();
  expect(stats.queued).toBe(0);
  expect(stats.inFlight).toBe(0);
  expect(pool.runningThreads).toBe(0);
}

export { contract, fixture };
