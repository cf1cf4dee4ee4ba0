/**
 * One rate limit for the whole cluster: four workers behind one port, each with
 * express-rate-limit and the cluster-wide `ClusterStore`. 30 requests, a limit of 10: exactly 10
 * pass, whichever worker serves them (a per-worker store would let 40 through).
 * Run it with `node --import tsx examples/rate-limit.ts`.
 */
import cluster from 'node:cluster';
import { connect, defineContract, startCluster } from 'clusterbus';
import { ClusterStore } from 'clusterbus/express-rate-limit';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import { z } from 'zod';

export const contract = defineContract({
  // The rate limiter's counters: one number per client key, with the window as its TTL.
  stores: { rateLimit: z.number() },
  methods: { port: { output: z.number() } },
});

if (cluster.isPrimary) {
  const app = await startCluster({ contract, workers: 4 });
  const port = await app.bus.call('any', 'port');
  const statuses: Record<number, number> = {};
  const servedBy = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } });
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    if (res.ok) servedBy.add(res.headers.get('x-worker') ?? '?');
    await res.arrayBuffer();
  }
  console.log(`200: ${statuses[200] ?? 0}, 429: ${statuses[429] ?? 0}`);
  console.log(`the 200s came from ${servedBy.size} worker(s)`);
  await app.close();
} else {
  // Ready once it listens: the primary asks a worker for the port as soon as all are ready.
  const bus = await connect(contract, { manualReady: true });
  const server = express()
    .use(
      rateLimit({
        windowMs: 60_000,
        limit: 10,
        standardHeaders: 'draft-8',
        legacyHeaders: false,
        store: new ClusterStore(bus.store('rateLimit')),
      }),
    )
    .get('/', (_req, res) => {
      res.set('x-worker', String(cluster.worker!.id)).send('hello\n');
    })
    // Port 0 in a cluster: every worker shares the same port, picked by the primary.
    .listen(0);
  server.once('listening', () => {
    const { port } = server.address() as { port: number };
    bus.handle('port', () => port);
    bus.ready();
  });
  bus.closeOnDrain(server);
}
