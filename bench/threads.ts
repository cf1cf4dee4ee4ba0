/**
 * The thread pool against piscina and a bare postMessage request/response, on the same task and
 * thread count: `node --import tsx bench/threads.ts` (`npm run bench:threads`). Small tasks with
 * 256 calls in flight, and a 1 MiB buffer moved with transfer (32 in flight); clusterbus
 * validates every input and output with the contract's zod schemas, the others validate nothing.
 * Each measurement runs for `--ms` (default 2_000) after a warm-up, in rounds that alternate the
 * implementations (`--rounds`, default 3); the best round of each counts. Prints calls/s and the
 * ratios.
 *
 * @module
 */
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { createPool } from '../src/threads/index.js';
import { benchContract } from './threads/contract.js';

const THREADS = 2;
/**
 * Calls in flight per thread, the same for both pools (`maxInFlightPerThread`,
 * `concurrentTasksPerWorker`): 128 lets the 256 calls of the small-task case all be in flight,
 * as the bare postMessage has them. `--per-thread 16` measures clusterbus's default (and
 * piscina's with the same value); piscina's own default is 1.
 */
const MIB = 1024 * 1024;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}
const MS = arg('ms', 2_000);
const PER_THREAD = arg('per-thread', 128);
const ROUNDS = arg('rounds', 3);

/** A `data:` module that registers tsx in the thread (Node 20 threads do not inherit it), then imports `url`. */
function tsThread(url: URL): URL {
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(url.href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/** One call of a task: resolves when answered. */
type Call = () => Promise<unknown>;

/** Keeps `inFlight` calls going for `ms`; returns calls per second. */
async function measure(call: Call, inFlight: number, ms: number): Promise<number> {
  let done = 0;
  const end = performance.now() + ms;
  const started = performance.now();
  async function lane(): Promise<void> {
    while (performance.now() < end) {
      await call();
      done++;
    }
  }
  await Promise.all(Array.from({ length: inFlight }, lane));
  return done / ((performance.now() - started) / 1000);
}

/** A bare request/response over postMessage: one Worker per thread, round robin. */
function bare(): { small: Call; buffer: Call; close: () => Promise<void> } {
  const workers = Array.from(
    { length: THREADS },
    () => new Worker(new URL('./threads/bare-thread.mjs', import.meta.url)),
  );
  const pending = new Map<number, (r: unknown) => void>();
  for (const w of workers) {
    w.on('message', (m: { i: number; r: unknown }) => {
      const resolve = pending.get(m.i);
      pending.delete(m.i);
      resolve?.(m.r);
    });
  }
  let next = 0;
  const send = (message: object, transfer?: ArrayBuffer[]) =>
    new Promise((resolve) => {
      const i = next++;
      pending.set(i, resolve);
      workers[i % THREADS]!.postMessage({ i, ...message }, transfer);
    });
  return {
    small: () => send({ a: 1, b: 2 }),
    buffer: () => {
      const buf = new ArrayBuffer(MIB);
      return send({ buf }, [buf]);
    },
    close: async () => {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

async function main(): Promise<void> {
  const pool = await createPool({
    contract: benchContract,
    file: tsThread(new URL('./threads/thread.ts', import.meta.url)),
    threads: THREADS,
    maxInFlightPerThread: PER_THREAD,
  });
  const piscina = new Piscina({
    filename: new URL('./threads/piscina-task.mjs', import.meta.url).href,
    minThreads: THREADS,
    maxThreads: THREADS,
    concurrentTasksPerWorker: PER_THREAD,
  });
  const raw = bare();
  const impls: Record<string, { small: Call; buffer: Call }> = {
    clusterbus: {
      small: () => pool.call('any', 'add', { a: 1, b: 2 }),
      buffer: () => {
        const buf = new ArrayBuffer(MIB);
        return pool.call('any', 'size', { buf }, { transfer: [buf] });
      },
    },
    piscina: {
      small: () => piscina.run({ a: 1, b: 2 }),
      buffer: () => {
        const buf = new ArrayBuffer(MIB);
        return piscina.run({ buf }, { transferList: [buf] });
      },
    },
    'bare postMessage': raw,
  };
  const cases = [
    { name: 'small tasks, 256 in flight', pick: 'small', inFlight: 256 },
    { name: '1 MiB buffer moved with transfer, 32 in flight', pick: 'buffer', inFlight: 32 },
  ] as const;
  const best: Record<string, Record<string, number>> = {};
  for (const c of cases) {
    best[c.name] = {};
    for (const impl of Object.values(impls)) await measure(impl[c.pick], c.inFlight, 300);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, impl] of Object.entries(impls)) {
        const rate = await measure(impl[c.pick], c.inFlight, MS);
        best[c.name]![name] = Math.max(best[c.name]![name] ?? 0, rate);
      }
    }
  }
  await pool.close();
  await piscina.destroy();
  await raw.close();
  console.log(
    `threads: ${THREADS}, ${PER_THREAD} calls in flight per thread at most, ${ROUNDS} rounds of ${MS} ms, best round`,
  );
  console.log('| case | clusterbus calls/s | piscina | bare postMessage | vs piscina | vs bare |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const [name, r] of Object.entries(best)) {
    const cb = r.clusterbus!;
    const pi = r.piscina!;
    const ba = r['bare postMessage']!;
    console.log(
      `| ${name} | ${cb.toFixed(0)} | ${pi.toFixed(0)} | ${ba.toFixed(0)} | ${(cb / pi).toFixed(2)}x | ${(cb / ba).toFixed(2)}x |`,
    );
  }
}

await main();
