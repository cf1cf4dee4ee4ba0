/** Case E: events/s delivered from the primary to 4 workers. */
import { BROADCAST_BURST, BROADCAST_WORKERS } from '../config.js';
import { expectReport, TICK_FILLER } from '../payload.js';
import type { Session } from '../session.js';
import { nextTurn } from '../stats.js';
import { type Case, RPC_IMPLS } from './case.js';

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

export const broadcastCase: Case = {
  id: 'E',
  title: `Broadcast to ${BROADCAST_WORKERS} workers (events of ~50 B)`,
  about: `The primary publishes N events \`{ n, s }\` (raw-json: one \`worker.send\` per worker per event; birpc: \`group.broadcast.$callEvent\`; clusterbus: \`bus.publish\`), yielding to the event loop every ${BROADCAST_BURST} events; each worker checks that it gets 1..N in order. events/s = ${BROADCAST_WORKERS} × N / time until every worker has all N.`,
  workers: BROADCAST_WORKERS,
  impls: RPC_IMPLS,
  async measure(session, _impl, config) {
    const { warmup, events } = config.broadcast;
    let done = received(session, warmup);
    await publish(session, 1, warmup);
    await done;
    const t0 = performance.now();
    done = received(session, warmup + events);
    await publish(session, warmup + 1, warmup + events);
    await done;
    const ms = performance.now() - t0;
    return [
      {
        variant: `${BROADCAST_WORKERS} workers`,
        metric: 'events/s',
        value: ((events * session.workers.length) / ms) * 1000,
      },
    ];
  },
};
