/**
 * The app the deploy files of this folder run (PM2, systemd, Docker, nodemon): an HTTP service
 * whose operation comes from outside the code. `--workers N` or `CLUSTER_WORKERS`, the drain
 * timeout (`GRACEFUL_SHUTDOWN_TIMEOUT`), the port (`PORT`, default 3000). Worker output is
 * labelled (`logs: 'prefix'`).
 *
 * Run it with `node --import tsx examples/deploy/server.ts --workers 2` (or, built, `node
 * dist/server.js`). It tells PM2 (`wait_ready`) and systemd (`Type=notify`) once every worker
 * listens. SIGTERM or Ctrl-C drains the workers, then the primary exits with 143 or 130, its
 * `process.on('exit')` hooks run.
 */
import cluster from 'node:cluster';
import http from 'node:http';
import { connect, defineContract, startCluster } from 'clusterbus';
import { z } from 'zod';

export const contract = defineContract({
  methods: { hello: { output: z.string() } },
});

const port = Number(process.env.PORT ?? 3000);

if (cluster.isPrimary) {
  const app = await startCluster({ contract, logs: 'prefix' });
  app.bus.handle('hello', () => `hello from the primary ${process.pid}`);
  process.on('exit', (code) => console.log(`primary: exiting with ${code}`));
  console.log(`primary: ${app.workers().length} workers ready, http://127.0.0.1:${port}/`);
} else {
  const bus = await connect(contract, { manualReady: true });
  const server = http.createServer((_req, res) => {
    bus.peers().then(
      async (peers) => {
        const hello = await bus.call('primary', 'hello');
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ worker: bus.self, slot: bus.slot, peers: peers.length, hello }));
      },
      (error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      },
    );
  });
  bus.closeOnDrain(server);
  server.listen(port, () => {
    console.log(`listening on ${port}`);
    bus.ready();
  });
}
