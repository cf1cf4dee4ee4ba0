/**
 * The HTTP cluster on its own: `node --import tsx examples/http-cluster/server.ts` starts one
 * worker per core on PORT (default 3000) and runs until SIGINT or SIGTERM. It is also the script
 * every worker runs (the `else` branch), for this primary and for demo.ts's.
 *
 *   curl localhost:3000/
 *   curl localhost:3000/peer
 *   curl localhost:3000/primary
 *   curl -X POST 'localhost:3000/invalidate?key=product:1'
 */
import cluster from 'node:cluster';
import { startHttpCluster } from './primary.js';
import { runWorker } from './worker.js';

const port = Number(process.env.PORT ?? 3000);

if (cluster.isPrimary) {
  const workers = process.env.WORKERS === undefined ? undefined : Number(process.env.WORKERS);
  const { app, port: actual } = await startHttpCluster({ port, workers });
  console.log(
    `primary ${process.pid}: ${app.workers().length} workers on http://localhost:${actual}`,
  );
  app.on('worker:exit', (e) => {
    if (e.planned) return;
    const how = e.signal ?? `code ${e.code}`;
    console.log(`worker ${e.workerId} exited (${how}); replaced by worker ${e.replacedBy ?? '-'}`);
  });
  app.on('worker:connected', (e) => console.log(`worker ${e.workerId} connected (pid ${e.pid})`));

  const stop = (signal: NodeJS.Signals) => {
    console.log(`${signal}: closing the cluster`);
    void app.close().then(() => console.log('closed'));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} else {
  await runWorker(port).catch((error: unknown) => {
    console.error(`worker ${cluster.worker?.id}: ${String(error)}`);
    process.exit(1);
  });
}
