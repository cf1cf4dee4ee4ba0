/** Case A: sequential primary -> worker call latency. */
import { filler } from '../payload.js';
import { percentile, sequential } from '../stats.js';
import { type Case, checkedEcho, RPC_IMPLS } from './case.js';

export const latencyCase: Case = {
  id: 'A',
  title: 'Sequential call latency (primary -> worker, 64 B echo)',
  about:
    'The primary calls `echo` on one worker and awaits each reply before the next call; latency of each call measured in the primary, p50 and p99 per round.',
  workers: 1,
  impls: RPC_IMPLS,
  async measure(session, _impl, config) {
    const echo = checkedEcho(session, session.workers[0]!, filler(64));
    await sequential(config.latency.warmup, echo);
    const latencies = await sequential(config.latency.calls, echo);
    return [
      { variant: '64 B', metric: 'p50 µs', value: percentile(latencies, 50) },
      { variant: '64 B', metric: 'p99 µs', value: percentile(latencies, 99) },
    ];
  },
};
