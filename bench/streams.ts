/**
 * Streamed responses between real processes (`npm run bench:streams`): items per second of
 * tiny items worker -> primary and worker -> worker (through the primary) for several windows,
 * and a slow consumer's memory: the heap of the consumer and of the producer (after GC) while a
 * consumer far slower than its producer reads 300,000 items, and how far ahead the producer got.
 *
 * @module
 */
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { connect, defineContract, startCluster } from '../src/index.js';

const contract = defineContract({
  methods: {
    count: { input: z.object({ n: z.number() }), stream: z.number() },
    produced: { output: z.number() },
    heap: { output: z.number() },
    /** Consumes `count` from worker `from`; resolves with items/s. */
    pull: {
      input: z.object({ from: z.number(), n: z.number(), window: z.number() }),
      output: z.number(),
    },
  },
});

if (cluster.isPrimary) {
  const app = await startCluster({
    contract,
    workers: 2,
    exec: fileURLToPath(import.meta.url),
    execArgv: ['--import', 'tsx', '--expose-gc'],
  });
  const [w1, w2] = app.bus.connectedWorkers() as [number, number];
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  const rows: string[] = [];
  for (const window of [16, 64, 256]) {
    const n = 500_000;
    const started = performance.now();
    let count = 0;
    for await (const _ of app.bus.stream(w1, 'count', { n }, { windowItems: window })) count++;
    const toPrimary = Math.round(count / ((performance.now() - started) / 1000));
    const toWorker = Math.round(await app.bus.call(w2, 'pull', { from: w1, n, window }));
    rows.push(
      `| ${window} | ${toPrimary.toLocaleString('en-US')} | ${toWorker.toLocaleString('en-US')} |`,
    );
  }
  console.log(`Streams of tiny items (numbers), ${process.version}, 2 workers\n`);
  console.log('| windowItems | worker -> primary, items/s | worker -> worker, items/s |');
  console.log('| ---: | ---: | ---: |');
  for (const r of rows) console.log(r);

  // A slow consumer: 1 ms pause every 500 items, far slower than the producer.
  const n = 300_000;
  const heaps: Array<{ consumer: number; producer: number; ahead: number }> = [];
  let i = 0;
  const started = performance.now();
  for await (const _ of app.bus.stream(w1, 'count', { n })) {
    i++;
    if (i % 500 === 0) await new Promise((r) => setTimeout(r, 1));
    if (i % 30_000 === 0) {
      gc();
      const producer = await app.bus.call(w1, 'heap');
      const ahead = (await app.bus.call(w1, 'produced')) - i;
      heaps.push({ consumer: process.memoryUsage().heapUsed, producer, ahead });
    }
  }
  const rate = Math.round(n / ((performance.now() - started) / 1000));
  const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
  const span = (k: 'consumer' | 'producer') => {
    const v = heaps.slice(1).map((h) => h[k]);
    return `${mb(Math.min(...v))}-${mb(Math.max(...v))} MB`;
  };
  console.log(
    `\nSlow consumer (1 ms pause every 500 items), ${n.toLocaleString('en-US')} items, default window (64 items, 1 MiB): ${rate.toLocaleString('en-US')} items/s; heap after GC, consumer (primary) ${span('consumer')}, producer (worker) ${span('producer')}; the producer at most ${Math.max(...heaps.map((h) => h.ahead))} items ahead`,
  );
  await app.close();
} else {
  const bus = await connect(contract);
  let produced = 0;
  bus.handle('count', async function* ({ n }) {
    for (let i = 0; i < n; i++) {
      produced = i + 1;
      yield i;
    }
  });
  bus.handle('produced', () => produced);
  bus.handle('heap', () => {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage().heapUsed;
  });
  bus.handle('pull', async ({ from, n, window }) => {
    const started = performance.now();
    let count = 0;
    for await (const _ of bus.stream(from, 'count', { n }, { windowItems: window })) count++;
    return count / ((performance.now() - started) / 1000);
  });
}
