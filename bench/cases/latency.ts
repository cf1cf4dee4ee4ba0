/** Case A: sequential primary -> worker call latency, 64 B object payload. */
import { withCpu } from '../cpu.js';
import { percentile, sequential } from '../stats.js';
import { type Case, checkedEcho, RPC_IMPLS } from './case.js';

export const latencyCase: Case = {
  id: 'A',
  title: 'Sequential call latency (primary -> worker, 64 B object echo)',
  about:
    'The primary calls `echo` on one worker and awaits each reply before the next call, after a warm-up of 500 calls (full mode); latency of each call measured in the primary, p50 and p99 per round, and the CPU time per call of each process.',
  workers: 1,
  impls: RPC_IMPLS,
  async measure(session, _impl, config) {
    const worker = session.workers[0]!;
    const echo = checkedEcho(session, worker, 64);
    await sequential(config.latency.warmup, echo);
    const { result: latencies, samples } = await withCpu(
      session,
      '64 B',
      [worker],
      config.latency.calls,
      () => sequential(config.latency.calls, echo),
    );
    return [
      { variant: '64 B', metric: 'p50 µs', value: percentile(latencies, 50) },
      { variant: '64 B', metric: 'p99 µs', value: percentile(latencies, 99) },
      ...samples,
    ];
  },
};
