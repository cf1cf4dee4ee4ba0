/**
 * The quick start: a primary and two workers sharing one typed contract.
 * Run it with `node --import tsx examples/quickstart.ts`.
 */
import cluster from 'node:cluster';
import { connect, defineContract, startCluster } from 'clusterbus';
import { z } from 'zod';

const Who = z.object({ pid: z.number(), workerId: z.number() });

export const contract = defineContract({
  methods: {
    add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
    whoami: { output: Who },
    // A worker's own calls: to the primary, to a peer by id, and to any worker.
    askAround: {
      input: z.object({ peer: z.number() }),
      output: z.object({ primary: Who, peer: z.number(), any: z.number() }),
    },
  },
  events: { 'cache.invalidate': z.object({ key: z.string() }) },
});

if (cluster.isPrimary) {
  const app = await startCluster({ contract, workers: 2 });
  app.bus.handle('whoami', () => ({ pid: process.pid, workerId: 0 }));
  const [first, second] = app.workers().map((w) => w.id) as [number, number];

  console.log(`add on worker ${first}:`, await app.bus.call(first, 'add', { a: 1, b: 2 }));
  for (const r of await app.bus.callAll('whoami')) {
    if (r.status === 'fulfilled') console.log(`worker ${r.workerId} is pid ${r.value.pid}`);
    else console.log(`worker ${r.workerId} failed: ${r.error.code}`);
  }
  app.bus.publish('cache.invalidate', { key: 'user:42' });
  console.log(
    `worker ${first} asked around:`,
    await app.bus.call(first, 'askAround', { peer: second }),
  );

  await app.close();
} else {
  const bus = await connect(contract);
  const workerId = bus.self;
  bus.handle('add', ({ a, b }) => a + b);
  bus.handle('whoami', () => ({ pid: process.pid, workerId }));
  bus.handle('askAround', async ({ peer }) => ({
    primary: await bus.call('primary', 'whoami'),
    peer: await bus.call(peer, 'add', { a: 10, b: 20 }),
    any: await bus.call('any', 'add', { a: 100, b: 200 }),
  }));
  bus.subscribe('cache.invalidate', ({ key }, { source }) => {
    console.log(`worker ${workerId}: invalidated ${key} (published by ${source})`);
  });
}
