/**
 * Case E: fan-out from the primary to 8 and 16 workers: events published to all (events/s), and
 * sequential calls of every worker at once (`callAll`, p50/p99).
 */
import { BROADCAST_BURST, FANOUT_WORKERS } from '../config.js';
import { withCpu } from '../cpu.js';
import { CheckError, checkEcho, echoMaker, expectReport, TICK_FILLER } from '../payload.js';
import type { Payload } from '../schemas.js';
import type { Session } from '../session.js';
import { nextTurn, percentile, sequential } from '../stats.js';
import type { Case, Sample } from './case.js';

/** Publishes events `from`..`to`, letting the event loop turn every {@link BROADCAST_BURST}. */
async function publish(session: Session, from: number, to: number): Promise<void> {
  for (let n = from; n <= to; n++) {
    session.publish({ n, s: TICK_FILLER });
    if (n % BROADCAST_BURST === 0) await nextTurn();
  }
}

/** Resolves when every worker has received events 1..total, in order. */
async function received(session: Session, total: number): Promise<void> {
  const reports = await Promise.all(
    session.workers.map((w) => session.run(w, { kind: 'count', total })),
  );
  reports.forEach((r, i) => {
    expectReport(r, 'count', `worker ${session.workers[i]}`);
  });
}

/** One callAll of `echo`, every worker's reply checked. */
function checkedCallAll(session: Session): (i: number) => Promise<void> {
  const make = echoMaker(64) as (i: number) => Payload;
  const callAll = session.callAll;
  if (callAll === undefined) throw new CheckError('this implementation has no callAll');
  return async (i) => {
    const sent = make(i);
    const replies = await callAll(sent);
    if (replies.length !== session.workers.length) {
      throw new CheckError(
        `callAll: ${replies.length} replies from ${session.workers.length} workers`,
      );
    }
    for (const reply of replies) checkEcho(sent, reply);
  };
}

export const fanoutCase: Case = {
  id: 'E',
  title: `Fan-out from the primary to ${FANOUT_WORKERS.join(' and ')} workers`,
  about: `publish: the primary publishes N events \`{ n, s }\` of about 50 B (raw-json: one \`worker.send\` per worker per event; raw-batched: a loop that sends 64 events per \`send\`; clusterbus: \`bus.publish\`), yielding to the event loop every ${BROADCAST_BURST} events; each worker checks that it gets 1..N in order; events/s = workers × N / time until every worker has all N; CPU per event published (primary) and received (each worker). callAll: the primary calls \`echo\` (64 B object) on every worker at once and awaits all replies before the next (raw-json: a hand-written send-to-all/await-all loop, \`Promise.all\` of one call per worker; clusterbus: \`bus.callAll\`), p50/p99 after a warm-up; CPU per callAll.`,
  workers: FANOUT_WORKERS,
  impls: ['raw-json', 'raw-batched', 'clusterbus'],
  rounds: (config) => config.fanout.rounds,
  async measure(session, impl, config) {
    const f = config.fanout;
    const n = session.workers.length;
    const samples: Sample[] = [];
    let done = received(session, f.warmup);
    await publish(session, 1, f.warmup);
    await done;
    const pub = `publish, ${n} workers`;
    const { result: ms, samples: cpu } = await withCpu(
      session,
      pub,
      session.workers,
      f.events,
      async () => {
        const t0 = performance.now();
        done = received(session, f.warmup + f.events);
        await publish(session, f.warmup + 1, f.warmup + f.events);
        await done;
        return performance.now() - t0;
      },
    );
    samples.push({ variant: pub, metric: 'events/s', value: ((f.events * n) / ms) * 1000 }, ...cpu);
    if (impl !== 'raw-batched') {
      const call = checkedCallAll(session);
      const all = `callAll, ${n} workers`;
      await sequential(f.callWarmup, call);
      const { result: latencies, samples: callCpu } = await withCpu(
        session,
        all,
        session.workers,
        f.calls,
        () => sequential(f.calls, call),
      );
      samples.push(
        { variant: all, metric: 'p50 µs', value: percentile(latencies, 50) },
        { variant: all, metric: 'p99 µs', value: percentile(latencies, 99) },
        ...callCpu,
      );
    }
    return samples;
  },
};
