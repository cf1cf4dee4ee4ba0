/** Memory: RSS of the primary and a worker before and after a million pipelined calls. */
import { INFLIGHT, MEMORY_PAYLOAD } from '../config.js';
import { withCpu } from '../cpu.js';
import { expectReport, sizeName } from '../payload.js';
import type { Session } from '../session.js';
import { collectGarbage, pipelined } from '../stats.js';
import { type Case, checkedEcho, type Sample } from './case.js';

const MB = 1024 * 1024;

async function rss(session: Session, worker: number): Promise<{ primary: number; worker: number }> {
  const report = expectReport(
    await session.run(worker, { kind: 'mem' }),
    'mem',
    `worker ${worker}`,
  );
  await collectGarbage();
  return { primary: process.memoryUsage().rss / MB, worker: report.rss / MB };
}

export const memoryCase: Case = {
  id: 'M',
  title: `Memory over pipelined calls (clusterbus, ${sizeName(MEMORY_PAYLOAD)} object echo, ${INFLIGHT} in flight)`,
  about:
    'RSS of the primary and of the worker after a warm-up, and again after the measured calls (a million in full mode), each sample after a full GC (`--expose-gc` is passed to both). One round.',
  workers: 1,
  impls: ['clusterbus'],
  rounds: () => 1,
  async measure(session, _impl, config) {
    const worker = session.workers[0]!;
    const echo = checkedEcho(session, worker, MEMORY_PAYLOAD);
    await pipelined(config.memory.warmup, INFLIGHT, echo);
    const before = await rss(session, worker);
    const calls = config.memory.calls;
    const variant = `${calls.toLocaleString('en-US')} calls`;
    const { result: ms, samples: cpu } = await withCpu(session, variant, [worker], calls, () =>
      pipelined(calls, INFLIGHT, echo),
    );
    const after = await rss(session, worker);
    const samples: Sample[] = [];
    for (const p of ['primary', 'worker'] as const) {
      samples.push(
        { variant: p, metric: 'RSS before MB', value: before[p] },
        { variant: p, metric: 'RSS after MB', value: after[p] },
        { variant: p, metric: 'ΔRSS MB', value: after[p] - before[p] },
      );
    }
    samples.push({ variant, metric: 'calls/s', value: (calls / ms) * 1000 }, ...cpu);
    return samples;
  },
};
