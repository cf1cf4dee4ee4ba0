/** Case C: worker -> worker calls through the primary, measured in the calling worker. */
import { INFLIGHT } from '../config.js';
import { withCpu } from '../cpu.js';
import { expectReport } from '../payload.js';
import { type Case, RPC_IMPLS } from './case.js';

export const relayCase: Case = {
  id: 'C',
  title: 'Worker -> worker through the primary (64 B object echo)',
  about: `Worker A calls \`echo\` on worker B; the primary routes (raw-json: hand-written forwarding by a target field; birpc: a \`relay\` function on the primary; clusterbus: \`bus.call(workerB, 'echo', ...)\`). Measured in worker A: sequential p50/p99, then calls/s with ${INFLIGHT} in flight; CPU per call of the primary and of the two workers (their mean), over the pipelined calls.`,
  workers: 2,
  impls: RPC_IMPLS,
  async measure(session, _impl, config) {
    const [a, b] = session.workers as [number, number];
    const r = config.relay;
    const seq = expectReport(
      await session.run(a, {
        kind: 'relay-seq',
        target: b,
        warmup: r.seqWarmup,
        calls: r.seqCalls,
        bytes: 64,
      }),
      'latency',
      `worker ${a}`,
    );
    const { result: pipe, samples } = await withCpu(
      session,
      'pipelined',
      [a, b],
      r.pipeCalls,
      async () =>
        expectReport(
          await session.run(a, {
            kind: 'relay-pipe',
            target: b,
            warmup: r.pipeWarmup,
            calls: r.pipeCalls,
            inflight: INFLIGHT,
            bytes: 64,
          }),
          'rate',
          `worker ${a}`,
        ),
    );
    return [
      { variant: 'sequential', metric: 'p50 µs', value: seq.p50 },
      { variant: 'sequential', metric: 'p99 µs', value: seq.p99 },
      { variant: 'pipelined', metric: 'calls/s', value: (pipe.calls / pipe.ms) * 1000 },
      ...samples,
    ];
  },
};
