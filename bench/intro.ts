/**
 * The prose of BENCHMARKS.md around the generated results: what is compared, how, and how to
 * reproduce. Written only when BENCHMARKS.md does not exist yet; afterwards only the results
 * section between the markers is replaced.
 *
 * @module
 */
import { BROADCAST_BURST, COUNTER_INFLIGHT, FULL, INFLIGHT, MEMORY_PAYLOAD } from './config.js';

export const INTRO = `# Benchmarks

clusterbus against the floor every library pays and against its nearest peers, over the same
Node.js \`cluster\` IPC channel, in one run.

## How to reproduce

\`\`\`sh
npm ci
redis-server --daemonize yes        # case F compares with Redis on 127.0.0.1:6379 (skipped if absent)
npm run bench                       # full: ${FULL.rounds} rounds, 15-30 min on a busy 2-core machine
npm run bench -- --quick            # one round, fewer calls, a few minutes
npm run bench -- --write-md         # also rewrites the results section of this file and bench/chart.svg
npm run bench -- --from-json bench/results/latest.json --write-md   # re-renders a run, no measuring
npm run bench -- --only A,C --impls raw-json,clusterbus --rounds 3
\`\`\`

Run it on an otherwise idle machine: the load average at start and end is recorded with the
results. Every run writes \`bench/results/latest.json\` (all samples, the configuration, the
machine). \`bench/probe.ts\` is a smaller probe of one case for quick A/B of a change
(\`PROBE_SHAPE=object node --import tsx bench/probe.ts 65536 3000 3\`), and
\`bench/profile-top.ts\` summarizes \`node --cpu-prof\` files (self time by function, GC's share).

## What is compared

- **raw-json**: a minimal hand-written request/response over \`worker.send\`/\`process.send\`
  (Node's default JSON serialization): an id counter and a Map of resolvers, no validation,
  no timeouts, no error path, one IPC message per request and per response. The floor.
  Worker -> worker calls are forwarded by the primary by a target field. Its fan-out call (E)
  is the hand-written send-to-all/await-all loop: \`Promise.all\` of one call per worker.
- **raw-batched**: the channel's ceiling: raw-json, except that every message sent in one tick
  goes in one \`send\` (flushed on \`process.nextTick\`), on both sides; events go 64 per send.
- **birpc**: [birpc](https://github.com/antfu-collective/birpc) over the same channel
  (\`post\`/\`on\`), one client per worker in a \`createBirpcGroup\`, default options.
- **birpc+zod**: the naive typed stack: birpc with superjson as its \`serialize\`/\`deserialize\`
  and zod validating inputs in the handler and outputs in the caller.
- **clusterbus**: as users run it: \`startCluster\` / \`connect\` with a contract of zod schemas,
  every input, output and event validated.
- **redis** (case F only): \`INCR\` through ioredis (default options) on 127.0.0.1:6379, one
  connection per worker.

## Method

- Every implementation of a case runs in a **fresh cluster** (fork, warm up, measure, close),
  interleaved: raw-json, birpc, birpc+zod, clusterbus, raw-json, ... for every round; tables
  show the median over the rounds and the min–max spread, and the ratio of medians to
  raw-json (and to Redis for F).
- Payloads are shaped like what an API moves: \`{ seq, id, name, score, items: [{ k, v, s }, …] }\`,
  sized by their JSON: 64 B (no item), 1 KiB (26 items), 64 KiB (1,711 items); every call sends
  a fresh top-level object (\`{ ...template, seq }\`). The single-string payload of earlier runs
  (\`{ id, s: 'x'.repeat(n) }\`) is kept as an extra row of D: it never pays the per-field copies
  and validation real objects pay. Pipelined measurements keep ${INFLIGHT} calls in flight; F keeps
  ${COUNTER_INFLIGHT} in flight per worker; E yields to the event loop every ${BROADCAST_BURST} events;
  M makes its calls with ${MEMORY_PAYLOAD} B object payloads.
- **CPU per call, per process**: every case reads \`process.cpuUsage()\` in the primary and in
  each worker (a job) around its measured loop, and reports µs per call; steadier than rates on
  a shared machine. H reads the workers' from /proc.
- **Every reply is checked** (echo: same id and length; events: all of 1..N in order in every
  worker; counter: the values returned are exactly 1..total, and Redis's final value). A failed
  check aborts the case with an error instead of a number.
- The primary and the workers run with \`--expose-gc\`; memory samples follow a full GC.
- Where the time goes: \`node --cpu-prof\` on bench/probe.ts (both processes write a profile),
  summarized by bench/profile-top.ts; H profiles the primary in-process (node:inspector).
`;
