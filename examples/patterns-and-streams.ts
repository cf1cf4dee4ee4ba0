/**
 * Topic patterns and streamed responses (docs/patterns-and-streams.md): a worker subscribes to
 * `cache.*`, and the primary streams an export out of a worker, with flow control, stopping it
 * half-way. Run: `node --import tsx examples/patterns-and-streams.ts`.
 */
import cluster from 'node:cluster';
import { connect, defineContract, startCluster } from 'clusterbus';
import { z } from 'zod';

export const contract = defineContract({
  methods: {
    // A streamed response: `stream` instead of `output`.
    export: {
      input: z.object({ rows: z.number() }),
      stream: z.object({ id: z.number(), name: z.string() }),
    },
    seen: { output: z.array(z.string()) },
  },
  events: {
    'cache.user': z.object({ key: z.string() }),
    'cache.session': z.object({ id: z.number() }),
    'orders.eu.paid': z.object({ amount: z.number() }),
  },
});

if (cluster.isPrimary) {
  const app = await startCluster({ contract, workers: 1 });
  const [worker] = app.bus.connectedWorkers() as [number];

  app.bus.publish('cache.user', { key: 'user:42' });
  app.bus.publish('orders.eu.paid', { amount: 12 }); // no worker subscribes: never sent to one
  app.bus.publish('cache.session', { id: 7 });
  console.log('the worker saw:', (await app.bus.call(worker, 'seen')).join(', '));

  let total = 0;
  for await (const row of app.bus.stream(
    worker,
    'export',
    { rows: 1_000_000 },
    { timeoutMs: 5_000 },
  )) {
    total += row.id;
    if (row.id === 9_999) break; // stops the generator in the worker: its finally runs
  }
  console.log('streamed 10000 rows, id sum', total);
  await app.close();
} else {
  const bus = await connect(contract);
  const seen: string[] = [];
  // The payload is { key: string } | { id: number }; ctx.topic is the concrete topic.
  bus.subscribe('cache.*', (payload, { topic }) => {
    seen.push(`${topic} ${JSON.stringify(payload)}`);
  });
  bus.handle('seen', () => seen);
  bus.handle('export', async function* ({ rows }, { signal }) {
    try {
      // Runs only as far as the consumer asked (64 rows ahead at most, by default).
      for (let id = 0; id < rows && !signal.aborted; id++) yield { id, name: `row ${id}` };
    } finally {
      // Closing a cursor or a file would go here.
    }
  });
}
