/** Cases B and D: pipelined primary -> worker calls, 256 in flight, by payload size. */
import { type Config, INFLIGHT, PAYLOAD_SIZES } from '../config.js';
import { filler, sizeName } from '../payload.js';
import type { Session } from '../session.js';
import { pipelined } from '../stats.js';
import { type Case, checkedEcho, RPC_IMPLS, type Sample } from './case.js';

async function rate(session: Session, bytes: number, config: Config): Promise<Sample> {
  const calls = config.pipelined[bytes] ?? 10_000;
  const echo = checkedEcho(session, session.workers[0]!, filler(bytes));
  await pipelined(Math.ceil(calls / 10), INFLIGHT, echo);
  const ms = await pipelined(calls, INFLIGHT, echo);
  return { variant: sizeName(bytes), metric: 'calls/s', value: (calls / ms) * 1000 };
}

export const pipelinedCase: Case = {
  id: 'B',
  title: `Pipelined calls (primary -> worker, 64 B echo, ${INFLIGHT} in flight)`,
  about: `The primary keeps ${INFLIGHT} \`echo\` calls in flight to one worker; calls/s over the measured calls, after a warm-up of a tenth as many.`,
  workers: 1,
  impls: RPC_IMPLS,
  measure: async (session, _impl, config) => [await rate(session, 64, config)],
};

export const payloadCase: Case = {
  id: 'D',
  title: `Pipelined calls by payload size (${INFLIGHT} in flight)`,
  about: `As B, for echo payloads of ${PAYLOAD_SIZES.map(sizeName).join(', ')} of JSON (\`{ id, s: 'x'.repeat(n) }\`), all three in the same cluster, smallest first.`,
  workers: 1,
  impls: RPC_IMPLS,
  async measure(session, _impl, config) {
    const samples: Sample[] = [];
    for (const bytes of PAYLOAD_SIZES) samples.push(await rate(session, bytes, config));
    return samples;
  },
};
