/** Case F: a shared counter incremented by 2 workers, 64 in flight each; final counts checked. */

import { redisAdmin } from '../baselines/redis.js';
import { COUNTER_INFLIGHT } from '../config.js';
import { withCpu } from '../cpu.js';
import { CheckError, expectReport } from '../payload.js';
import type { ImplName, Session } from '../session.js';
import type { Case } from './case.js';

const KEY = 'clusterbus:bench:counter';

/** Both workers increment `calls` times at once; returns the values and the slower one's ms. */
async function incrementAll(
  session: Session,
  calls: number,
): Promise<{ values: number[]; ms: number }> {
  const reports = await Promise.all(
    session.workers.map((w) =>
      session.run(w, { kind: 'incr', key: KEY, calls, inflight: COUNTER_INFLIGHT }),
    ),
  );
  const values: number[] = [];
  let ms = 0;
  reports.forEach((r, i) => {
    const report = expectReport(r, 'incr', `worker ${session.workers[i]}`);
    for (const v of report.values) values.push(v);
    ms = Math.max(ms, report.ms);
  });
  return { values, ms };
}

/** Exact count: the values are exactly `from`+1..`to`, each once. */
function checkValues(values: number[], from: number, to: number, impl: ImplName): void {
  const sorted = values.sort((a, b) => a - b);
  const bad = sorted.findIndex((v, i) => v !== from + 1 + i);
  if (sorted.length !== to - from || bad !== -1) {
    throw new CheckError(
      `${impl}: the increments resolved to ${sorted.length} values, expected each of ${from + 1}..${to} once (first mismatch at index ${bad}: ${sorted[bad]})`,
    );
  }
}

export const counterCase: Case = {
  id: 'F',
  title: `Shared counter (2 workers, ${COUNTER_INFLIGHT} in flight each)`,
  about: `Both workers increment one counter by 1, ${COUNTER_INFLIGHT} increments in flight each (raw-json: a Map in the primary behind the hand-written RPC; redis: \`INCR\` through ioredis on 127.0.0.1:6379; clusterbus: \`bus.store('counter').increment(key, 1)\`). calls/s = all increments / the slower worker's time; CPU per increment: the primary's per increment of all, a worker's per increment of its own (the Redis server's own CPU is not counted). Every value returned is checked: together they are exactly 1..total, and Redis's final value is read back.`,
  workers: 2,
  impls: ['raw-json', 'redis', 'clusterbus'],
  async measure(session, impl, config) {
    const { warmup, calls } = config.counter;
    const n = session.workers.length;
    const admin = impl === 'redis' ? await redisAdmin() : undefined;
    try {
      await admin?.del(KEY);
      checkValues((await incrementAll(session, warmup)).values, 0, n * warmup, impl);
      const variant = `${n} workers`;
      const {
        result: { values, ms },
        samples,
      } = await withCpu(
        session,
        variant,
        session.workers,
        n * calls,
        () => incrementAll(session, calls),
        calls,
      );
      const total = n * (warmup + calls);
      checkValues(values, n * warmup, total, impl);
      if (admin !== undefined) {
        const final = Number(await admin.get(KEY));
        if (final !== total) throw new CheckError(`redis: final value ${final}, expected ${total}`);
        await admin.del(KEY);
      }
      return [{ variant, metric: 'calls/s', value: ((n * calls) / ms) * 1000 }, ...samples];
    } finally {
      admin?.disconnect();
    }
  },
};
