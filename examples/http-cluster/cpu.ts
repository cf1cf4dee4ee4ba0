/**
 * A worker's CPU routes: `GET /cpu` checks a batch of 1,000 records in the worker's thread pool,
 * `GET /cpu-inline` does the same work on the worker's own event loop. The worker measures its
 * event-loop delay and answers `cpuStats` with it (and resets it), so the primary can compare
 * the two routes under the same load. The pool closes with the worker's drain.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { WorkerBus } from 'clusterbus';
import { createPool, type Pool } from 'clusterbus/threads';
import type { contract } from './contract.js';
import { type BatchReport, type CpuStats, cpuContract } from './cpu-contract.js';
import { checkBatch, makeBatch } from './cpu-work.js';

/** Records per batch. */
const BATCH = 1_000;
/** Threads per worker's pool. */
const THREADS = Number(process.env.CPU_THREADS ?? 1);
const RESOLUTION_MS = 10;

/**
 * The thread's module. Under tsx on Node 20, worker threads do not inherit tsx's loader, so a
 * `.ts` thread starts from a one-line module that registers tsx in the thread first. A built app
 * (plain `.js`) passes its file's URL as it is.
 */
function threadFile(url: URL): URL {
  if (!url.pathname.endsWith('.ts')) return url;
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(url.href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

export interface CpuRoutes {
  /** `GET /cpu`: a batch checked by the pool. */
  pooled(): Promise<BatchReport>;
  /** `GET /cpu-inline`: the same, on this event loop. */
  inline(): BatchReport;
}

/**
 * Answers `cpuStats` on `bus`. The pool starts at the first `/cpu` request or `cpuStats` call
 * (the demo's CPU phase asks every worker first), so the worker itself starts as fast as before.
 */
export function startCpuRoutes(bus: WorkerBus<typeof contract>): CpuRoutes {
  let started: Promise<Pool<typeof cpuContract>> | undefined;
  const ensurePool = () => {
    started ??= createPool({
      contract: cpuContract,
      file: threadFile(new URL('./cpu-thread.ts', import.meta.url)),
      threads: THREADS,
      name: 'cpu',
    });
    return started;
  };
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable(); // its own timer, unref'd: it does not keep the worker alive
  const counts = { inline: 0, pooled: 0 };
  // One batch per worker, made once: both routes check the same records (the pool's copy is
  // made by structured clone on each call, the work the worker's event loop keeps).
  const batch = makeBatch(BATCH);
  const ms = (ns: number) => (Number.isFinite(ns) ? Math.max(0, ns / 1e6 - RESOLUTION_MS) : 0);
  bus.handle('cpuStats', async (): Promise<CpuStats> => {
    const pool = await ensurePool();
    const loopDelayMs = {
      p50: ms(delay.percentile(50)),
      p99: ms(delay.percentile(99)),
      max: ms(delay.max),
    };
    delay.reset();
    const { threads, busy, queued, callsServed } = pool.stats();
    const answer = {
      workerId: bus.self,
      loopDelayMs,
      ...counts,
      pool: { threads, busy, queued, callsServed },
    };
    counts.inline = 0;
    counts.pooled = 0;
    return answer;
  });
  return {
    async pooled() {
      const pool = await ensurePool();
      const report = await pool.call(
        'any',
        'checkBatch',
        { records: batch },
        { timeoutMs: 10_000 },
      );
      counts.pooled++;
      return report;
    },
    inline() {
      const report = checkBatch(batch);
      counts.inline++;
      return report;
    },
  };
}
