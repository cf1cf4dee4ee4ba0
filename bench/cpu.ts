/**
 * CPU time per call, per process: `process.cpuUsage()` in the primary and in each worker (a
 * `cpu` job), read around a measured loop. Steadier than wall-clock rates on a shared machine.
 *
 * @module
 */
import type { Sample } from './cases/case.js';
import { expectReport } from './payload.js';
import type { Session } from './session.js';

/** CPU µs (user + system) of every worker of `workers`, by position. */
async function workerCpu(session: Session, workers: readonly number[]): Promise<number[]> {
  const reports = await Promise.all(workers.map((w) => session.run(w, { kind: 'cpu' })));
  return reports.map((r, i) => expectReport(r, 'cpu', `worker ${workers[i]}`).us);
}

/**
 * Runs `loop` and returns its result with two samples of `variant`: the primary's CPU µs per
 * call, and the workers' (of `workers`: the mean over them) per call; `calls` is what the loop
 * did, the unit of "per call" (`workerCalls`: what each worker did, if that differs).
 */
export async function withCpu<T>(
  session: Session,
  variant: string,
  workers: readonly number[],
  calls: number,
  loop: () => Promise<T>,
  workerCalls = calls,
): Promise<{ result: T; samples: Sample[] }> {
  const w0 = await workerCpu(session, workers);
  const p0 = process.cpuUsage();
  const result = await loop();
  const p = process.cpuUsage(p0);
  const w1 = await workerCpu(session, workers);
  const workerUs = w1.reduce((sum, us, i) => sum + us - w0[i]!, 0) / workers.length;
  return {
    result,
    samples: [
      { variant, metric: 'primary CPU µs/call', value: (p.user + p.system) / calls },
      { variant, metric: 'worker CPU µs/call', value: workerUs / workerCalls },
    ],
  };
}
