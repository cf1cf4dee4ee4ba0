/**
 * `npm run bench:nats`: clusterbus across nodes against the raw engine on the same nats-server
 * (started here, on a free port), ratios from one run:
 * - throughput with 256 calls in flight, and p50 latency of sequential calls: raw `nc.request`
 *   with a hand-written JSON codec to a responder in another process, against `bus.call({ node,
 *   worker })` from this node's primary to a worker of another node (another process tree);
 * - `store.increment` against a raw `@nats-io/kv` get + update loop, one writer, R1 bucket.
 * Options: `--calls N` (default 20000), `--increments N` (default 2000).
 *
 * @module
 */
import { spawn } from 'node:child_process';
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { startCluster } from '../src/index.js';
import { natsMesh } from '../src/nats/index.js';
import { meshContract } from '../test/nats/fixtures/contract.js';
import { MeshNodeProc } from '../test/nats/nodes.js';
import { NatsFixture } from '../test/nats/servers.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const CALLS = arg('calls', 20_000);
const INCREMENTS = arg('increments', 2_000);
const IN_FLIGHT = 256;
const NODE_FIXTURE = fileURLToPath(new URL('../test/nats/fixtures/node.ts', import.meta.url));

if (process.env.RAW_RESPONDER !== undefined) {
  // The raw baseline's other process: a JSON request/reply responder.
  const nc = await connect({ servers: process.env.RAW_RESPONDER });
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  nc.subscribe('raw.add', {
    callback: (_e, m) => {
      const { a, b } = JSON.parse(dec.decode(m.data)) as { a: number; b: number };
      m.respond(enc.encode(JSON.stringify({ r: a + b })));
    },
  });
  await nc.flush();
  process.send?.('ready');
} else if (cluster.isPrimary) {
  await main();
}

/** Runs `call` CALLS times with IN_FLIGHT in flight; returns calls per second. */
async function throughput(call: () => Promise<unknown>): Promise<number> {
  let left = CALLS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left-- > 0) await call();
    }),
  );
  return CALLS / ((performance.now() - started) / 1000);
}

/** The median latency of `n` sequential calls, in µs. */
async function p50(call: () => Promise<unknown>, n = 2_000): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call();
    times.push(performance.now() - t);
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(n / 2)]! * 1000;
}

async function main(): Promise<void> {
  const fixture = new NatsFixture();
  const server = await fixture.single();
  const url = server.url;
  const enc = new TextEncoder();
  const dec = new TextDecoder();

  // Raw: a responder in another process, JSON both ways.
  const responder = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, RAW_RESPONDER: url },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise((r) => responder.once('message', r));
  const nc = await connect({ servers: url });
  const raw = () =>
    nc
      .request('raw.add', enc.encode(JSON.stringify({ a: 1, b: 2 })), { timeout: 30_000 })
      .then((m) => (JSON.parse(dec.decode(m.data)) as { r: number }).r);

  // clusterbus: this process is node a; node b is another process tree with one worker.
  const b = await MeshNodeProc.start('b', [url], { WORKERS: '1' });
  const [workerB] = await b.value<number[]>('workers');
  const app = await startCluster({
    contract: meshContract,
    workers: 1,
    exec: NODE_FIXTURE,
    execArgv: ['--import', 'tsx'],
    config: { greeting: 'bench' },
    health: false,
    signals: false,
    mesh: natsMesh({ servers: url, node: 'a' }),
  });
  const target = { node: 'b', worker: workerB! };
  const cb = () => app.bus.call(target, 'add', { a: 1, b: 2 });

  // Warm up both, then alternate the measurements: the best of three rounds each.
  for (let i = 0; i < 2_000; i++) await Promise.all([raw(), cb()]);
  let [rawTput, cbTput, rawP50, cbP50] = [0, 0, Infinity, Infinity];
  for (let round = 0; round < 3; round++) {
    rawTput = Math.max(rawTput, await throughput(raw));
    cbTput = Math.max(cbTput, await throughput(cb));
    rawP50 = Math.min(rawP50, await p50(raw));
    cbP50 = Math.min(cbP50, await p50(cb));
  }

  // Increments: raw KV get + update loop against store.increment, one writer each.
  const kv = await new Kvm(jetstream(nc)).create('bench_raw', { history: 1 });
  await kv.put('n', enc.encode('0'));
  const rawLoop = async (n: number) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) {
      const e = await kv.get('n');
      await kv.update('n', enc.encode(String(Number(dec.decode(e!.value)) + 1)), e!.revision);
    }
    return n / ((performance.now() - t) / 1000);
  };
  const store = app.bus.store('hits');
  const cbLoop = async (n: number) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) await store.increment('bench');
    return n / ((performance.now() - t) / 1000);
  };
  await rawLoop(500);
  await cbLoop(500);
  let [rawIncr, cbIncr] = [0, 0];
  for (let round = 0; round < 3; round++) {
    rawIncr = Math.max(rawIncr, await rawLoop(INCREMENTS));
    cbIncr = Math.max(cbIncr, await cbLoop(INCREMENTS));
  }

  const rows = [
    ['call across nodes, 256 in flight (calls/s)', rawTput, cbTput, cbTput / rawTput, '≥ 0.9'],
    ['call across nodes, p50 (µs)', rawP50, cbP50, cbP50 / rawP50, '≤ 1.15'],
    ['increment, one writer (ops/s)', rawIncr, cbIncr, cbIncr / rawIncr, '≥ 0.9'],
  ] as const;
  console.log(`\nnats-server ${nc.info?.version}, ${CALLS} calls, ${INCREMENTS} increments\n`);
  console.log('| case | raw NATS | clusterbus | ratio | target |');
  console.log('| --- | ---: | ---: | ---: | --- |');
  for (const [name, r, c, ratio, goal] of rows) {
    console.log(`| ${name} | ${r.toFixed(0)} | ${c.toFixed(0)} | ${ratio.toFixed(2)} | ${goal} |`);
  }
  await app.close();
  await b.close();
  await nc.close();
  responder.kill();
  await fixture.close();
}
