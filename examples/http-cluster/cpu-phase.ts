/**
 * The CPU phase of the demo: the same load on `GET /cpu-inline` (the batch checked on the
 * worker's event loop), then on `GET /cpu` (checked in the worker's thread pool), each for a few
 * seconds. After each, every worker reports its event-loop delay over the run (`cpuStats`). The
 * pool keeps the workers' event loops free: their delay must stay well under the inline run's.
 */
import type { ClusterApp } from 'clusterbus';
import type { contract } from './contract.js';
import type { CpuStats } from './cpu-contract.js';
import { type LoadFigures, startLoad } from './load.js';

export interface CpuRun {
  readonly route: '/cpu-inline' | '/cpu';
  readonly reqPerS: number;
  readonly ok2xx: number;
  readonly failed: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number };
  /** The largest p50, p99 and max of the workers' event-loop delays over the run, in ms. */
  readonly loopDelayP50Ms: number;
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
  readonly workers: readonly CpuStats[];
}

export interface CpuFigures {
  readonly inline: CpuRun;
  readonly pool: CpuRun;
  /**
   * No request failed, and the pool run's median event-loop delay (p50, the worst worker's) is
   * under a quarter of the inline run's. The median, not p99 or max: one GC pause or thread
   * start on a loaded 2-core machine moves a tail, not the median.
   */
  readonly passed: boolean;
}

async function gather(app: ClusterApp<typeof contract>): Promise<CpuStats[]> {
  const all = await app.bus.callAll('cpuStats', undefined, { timeoutMs: 10_000 });
  return all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
}

async function runOne(
  app: ClusterApp<typeof contract>,
  port: number,
  route: CpuRun['route'],
  seconds: number,
  connections: number,
): Promise<CpuRun> {
  await gather(app); // resets every worker's figures
  const load = startLoad({
    port,
    connections,
    requests: [{ method: 'GET', path: route }],
    maxSeconds: seconds + 30,
    timeoutS: 20,
  });
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const figures: LoadFigures = await load.finish();
  const workers = await gather(app);
  return {
    route,
    reqPerS: figures.reqPerS,
    ok2xx: figures.ok2xx,
    failed: figures.non2xx + figures.errors,
    latencyMs: figures.latencyMs,
    loopDelayP50Ms: Math.max(0, ...workers.map((w) => w.loopDelayMs.p50)),
    loopDelayP99Ms: Math.max(0, ...workers.map((w) => w.loopDelayMs.p99)),
    loopDelayMaxMs: Math.max(0, ...workers.map((w) => w.loopDelayMs.max)),
    workers,
  };
}

/** Runs the CPU phase against the cluster on `port`. */
export async function runCpuPhase(
  app: ClusterApp<typeof contract>,
  port: number,
  options: { readonly seconds: number; readonly connections: number },
): Promise<CpuFigures> {
  const inline = await runOne(app, port, '/cpu-inline', options.seconds, options.connections);
  const pool = await runOne(app, port, '/cpu', options.seconds, options.connections);
  const passed =
    inline.failed === 0 &&
    pool.failed === 0 &&
    inline.ok2xx > 0 &&
    pool.ok2xx > 0 &&
    pool.loopDelayP50Ms < inline.loopDelayP50Ms / 4;
  return { inline, pool, passed };
}

/** The phase's summary lines. */
export function cpuSummary(f: CpuFigures): string[] {
  const row = (r: CpuRun) =>
    `  ${r.route.padEnd(11)} ${r.reqPerS.toFixed(0).padStart(6)} req/s  latency p50 ${r.latencyMs.p50} ms p99 ${r.latencyMs.p99} ms  failed ${r.failed}  workers' event-loop delay p50 ${r.loopDelayP50Ms.toFixed(1)} ms, p99 ${r.loopDelayP99Ms.toFixed(1)} ms, max ${r.loopDelayMaxMs.toFixed(1)} ms`;
  return [
    'CPU        a batch of 1,000 records validated and digested per request: inline on the worker, or in its thread pool',
    row(f.inline),
    row(f.pool),
    `           the pool keeps the workers' event loops free (median delay under a quarter of the inline run's: ${(f.inline.loopDelayP50Ms / Math.max(f.pool.loopDelayP50Ms, 0.1)).toFixed(1)}x lower p50, ${(f.inline.loopDelayP99Ms / Math.max(f.pool.loopDelayP99Ms, 0.1)).toFixed(1)}x lower p99): ${f.passed ? 'PASSED' : 'FAILED'}`,
  ];
}
