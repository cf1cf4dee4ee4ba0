/**
 * The prose of BENCHMARKS.md around the generated results: what is compared, how, and how to
 * reproduce. Written only when BENCHMARKS.md does not exist yet; afterwards only the results
 * section between the markers is replaced.
 *
 * @module
 */
import { BROADCAST_BURST, COUNTER_INFLIGHT, FULL, INFLIGHT } from './config.js';

export const INTRO = `# Benchmarks

clusterbus against the floor every library pays and against its nearest peers, over the same
Node.js \`cluster\` IPC channel, in one run.

## How to reproduce

\`\`\`sh
npm ci
redis-server --daemonize yes        # case F compares with Redis on 127.0.0.1:6379 (skipped if absent)
npm run bench                       # full: ${FULL.rounds} rounds, a few minutes
npm run bench -- --quick            # one round, fewer calls, under a minute
npm run bench -- --write-md         # also rewrites the results section of this file
npm run bench -- --only A,C --impls raw-json,clusterbus --rounds 3
\`\`\`

Run it on an otherwise idle machine: the load average at start and end is recorded with the
results. Every run writes \`bench/results/latest.json\` (all samples, the configuration, the
machine). \`bench/probe.ts\` is a smaller probe of one case for quick A/B of a change.

## What is compared

- **raw-json**: a minimal hand-written request/response over \`worker.send\`/\`process.send\`
  (Node's default JSON serialization): an id counter and a Map of resolvers, no validation,
  no timeouts, no error path, one IPC message per request and per response. The floor.
  Worker -> worker calls are forwarded by the primary by a target field.
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
- Payloads: \`{ id, s: 'x'.repeat(n) }\` sized so that its JSON is 64 B, 1 KiB or 64 KiB.
  Pipelined measurements keep ${INFLIGHT} calls in flight; F keeps ${COUNTER_INFLIGHT} in flight
  per worker; E yields to the event loop every ${BROADCAST_BURST} events.
- **Every reply is checked** (echo: same id and length; events: all of 1..N in order in every
  worker; counter: the values returned are exactly 1..total, and Redis's final value). A failed
  check aborts the case with an error instead of a number.
- The primary and the workers run with \`--expose-gc\`; memory samples follow a full GC.
`;
