/** Cases B and D: pipelined primary -> worker calls, 256 in flight, by payload size. */
import { type Config, INFLIGHT, PAYLOAD_SIZES } from '../config.js';
import { withCpu } from '../cpu.js';
import { sizeName } from '../payload.js';
import type { Session } from '../session.js';
import { pipelined } from '../stats.js';
import { type Case, checkedEcho, PIPELINED_IMPLS, RPC_IMPLS, type Sample } from './case.js';

async function rate(
  session: Session,
  bytes: number,
  config: Config,
  shape: 'object' | 'string' = 'object',
): Promise<Sample[]> {
  const calls = config.pipelined[bytes] ?? 10_000;
  const worker = session.workers[0]!;
  const echo = checkedEcho(session, worker, bytes, shape);
  const variant = shape === 'string' ? `${sizeName(bytes)} string` : sizeName(bytes);
  await pipelined(Math.ceil(calls / 10), INFLIGHT, echo);
  const { result: ms, samples } = await withCpu(session, variant, [worker], calls, () =>
    pipelined(calls, INFLIGHT, echo),
  );
  return [{ variant, metric: 'calls/s', value: (calls / ms) * 1000 }, ...samples];
}

export const pipelinedCase: Case = {
  id: 'B',
  title: `Pipelined calls (primary -> worker, 64 B object echo, ${INFLIGHT} in flight)`,
  about: `The primary keeps ${INFLIGHT} \`echo\` calls in flight to one worker; calls/s over the measured calls, after a warm-up of a tenth as many. raw-batched is the channel's ceiling: raw-json, except that every message of a tick goes in one \`send\`, on both sides.`,
  workers: 1,
  impls: PIPELINED_IMPLS,
  measure: (session, _impl, config) => rate(session, 64, config),
};

export const payloadCase: Case = {
  id: 'D',
  title: `Pipelined calls by payload size (${INFLIGHT} in flight)`,
  about: `As B, for object payloads \`{ seq, id, name, score, items: [{ k, v, s }, …] }\` of ${PAYLOAD_SIZES.map(sizeName).join(', ')} of JSON (1 KiB: 26 items, 64 KiB: 1,711), all in the same cluster, smallest first; then the single-string payload of earlier runs (\`{ id, s: 'x'.repeat(n) }\`, 64 KiB) as an extra row.`,
  workers: 1,
  // Not raw-batched: batching every frame of a tick into one send, it makes messages of 256 calls
  // (16 MiB at 64 KiB) and the two processes take turns; B has it, as the ceiling at 64 B.
  impls: RPC_IMPLS,
  async measure(session, _impl, config) {
    const samples: Sample[] = [];
    for (const bytes of PAYLOAD_SIZES) samples.push(...(await rate(session, bytes, config)));
    samples.push(...(await rate(session, 65536, config, 'string')));
    return samples;
  },
};
