/**
 * The process-wide list of open pools: what a cluster worker's health report shows of its pools
 * and what its drain closes. A pool adds itself when `createPool` resolves and removes itself when
 * it closes. Kept on `globalThis` under a registered symbol, so two copies of the library in one
 * process still share one list.
 *
 * @module
 */
import { z } from 'zod';

/** One thread of a pool, in {@link PoolStats.perThread}. @category Worker threads */
export interface ThreadStats {
  /** The thread's index in its pool, 0-based (a replacement keeps it). */
  readonly thread: number;
  /** Node's `threadId` of the thread now in that place; absent while it is being replaced. */
  readonly threadId?: number;
  /** Whether the thread is connected and takes calls. */
  readonly ready: boolean;
  /** Calls sent to it and not yet settled (cancelled ones whose handler has not returned included). */
  readonly inFlight: number;
  /** Calls the threads in this place answered (a result or an error), since the pool started. */
  readonly callsServed: number;
  /** How many times the thread in this place was replaced. */
  readonly restarts: number;
}

/**
 * A pool's figures, as `pool.stats()` and a cluster worker's health report give them.
 * @category Worker threads
 */
export interface PoolStats {
  /** The pool's name (`createPool({ name })`). */
  readonly name: string;
  /** Threads connected and taking calls. */
  readonly threads: number;
  /** Threads with at least one call in flight. */
  readonly busy: number;
  /** Calls waiting in the pool's queue for a thread. */
  readonly queued: number;
  /** Calls sent to a thread and not yet settled. */
  readonly inFlight: number;
  /** Calls the threads answered (a result or an error), since the pool started. */
  readonly callsServed: number;
  /** Thread replacements since the pool started (crashes, exits, terminations after an abort). */
  readonly restarts: number;
  /** One entry per thread index. */
  readonly perThread: readonly ThreadStats[];
}

/** @internal The wire schema of {@link PoolStats}, in a health report (the hub validates it). */
export const PoolStatsSchema = z.object({
  name: z.string(),
  threads: z.number(),
  busy: z.number(),
  queued: z.number(),
  inFlight: z.number(),
  callsServed: z.number(),
  restarts: z.number(),
  perThread: z.array(
    z.object({
      thread: z.number(),
      threadId: z.number().optional(),
      ready: z.boolean(),
      inFlight: z.number(),
      callsServed: z.number(),
      restarts: z.number(),
    }),
  ),
});

/** What the registry needs of a pool. */
export interface RegisteredPool {
  stats(): PoolStats;
  close(): Promise<void>;
}

const KEY = Symbol.for('clusterbus.threads.pools');

function pools(): Set<RegisteredPool> {
  const holder = globalThis as { [KEY]?: Set<RegisteredPool> };
  holder[KEY] ??= new Set();
  return holder[KEY];
}

/** @internal Adds an open pool; returns its remover. */
export function registerPool(pool: RegisteredPool): () => void {
  pools().add(pool);
  return () => pools().delete(pool);
}

/** The stats of every open pool of this process (in a cluster worker's health report). */
export function poolStats(): PoolStats[] {
  return [...pools()].map((p) => p.stats());
}

/** Closes every open pool of this process (a cluster worker's drain does). Never rejects. */
export async function closePools(): Promise<void> {
  await Promise.allSettled([...pools()].map((p) => p.close()));
}
