/**
 * The contract of the HTTP cluster example: what the workers and the primary say to each other
 * while every worker serves HTTP on one shared port.
 */
import { defineContract } from 'clusterbus';
import { z } from 'zod';
import { CpuStats } from './cpu-contract.js';

/** The routes a worker serves; `other` counts everything else (404s). */
export const ROUTES = [
  '/',
  '/cache',
  '/peer',
  '/primary',
  '/invalidate',
  '/cpu',
  '/cpu-inline',
  'other',
] as const;
export type Route = (typeof ROUTES)[number];

/** The config every worker runs, pushed by the primary with `app.config.update()`. */
export const Config = z.object({
  /** What `GET /` answers with. */
  greeting: z.string().min(1),
});

/** What a worker has done since it started, counted by the worker itself. */
export const WorkerStats = z.object({
  workerId: z.number(),
  slot: z.number(),
  pid: z.number(),
  /** The config version it runs, and that version's greeting. */
  config: z.object({ version: z.number(), greeting: z.string() }),
  /** HTTP responses sent, by route. */
  requests: z.record(z.enum(ROUTES), z.number()),
  /**
   * Its increments of the `hits` store: one per 2xx response, issued once the response is
   * written. `stats` answers once every increment it issued has settled: `applied` by the store
   * (in the primary) or `failed`.
   */
  hits: z.object({ applied: z.number(), failed: z.number() }),
  /** `hello` calls this worker answered for peers, and its own peer calls it had to re-route. */
  peerCalls: z.object({ answered: z.number(), rerouted: z.number() }),
  /** Its own in-memory cache. */
  cache: z.object({ entries: z.number(), hits: z.number(), misses: z.number() }),
  /** Invalidations it published, applied (its own included), and the last distinct keys applied. */
  invalidations: z.object({
    published: z.number(),
    applied: z.number(),
    recentKeys: z.array(z.string()),
  }),
});
export type WorkerStats = z.output<typeof WorkerStats>;

const Who = z.object({ workerId: z.number(), pid: z.number() });

export const contract = defineContract({
  config: Config,
  stores: {
    /** 2xx responses served by the whole cluster, by route (`/cache`, `/peer`, ...). */
    hits: z.number().int().nonnegative(),
  },
  methods: {
    /** GET /peer: one worker greets another, through the primary. */
    hello: { input: z.object({ from: z.number() }), output: Who.extend({ answered: z.number() }) },
    /** GET /primary: answered by the primary. */
    clusterInfo: {
      output: z.object({
        pid: z.number(),
        workers: z.array(z.number()),
        restarts: z.number(),
        uptimeMs: z.number(),
      }),
    },
    /** A worker's counters, gathered by the demo with `callAll` (once its increments settled). */
    stats: { output: WorkerStats },
    /** A worker's CPU-route figures (cpu.ts), read and reset by the demo's CPU phase. */
    cpuStats: { output: CpuStats },
  },
  events: {
    /** POST /invalidate: every worker drops `key` from its own cache. */
    'cache.invalidate': z.object({ key: z.string().min(1) }),
    /** The ready workers, published by the primary whenever the set changes. */
    'cluster.members': z.object({ workers: z.array(z.number()) }),
  },
});
