/**
 * One node of the mesh demo: a primary (driven by demo.ts over IPC) with 2 workers serving HTTP
 * on PORT; each request counts a hit in the store every node shares, then answers 200.
 */
import cluster from 'node:cluster';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { connect, startCluster } from '../../src/index.js';
import { natsMesh } from '../../src/nats/index.js';
import { contract } from './contract.js';

const env = process.env;

if (cluster.isPrimary) {
  const app = await startCluster({
    contract,
    workers: 2,
    exec: fileURLToPath(import.meta.url),
    execArgv: ['--import', 'tsx'],
    config: { greeting: 'hello' },
    signals: false,
    mesh: natsMesh({ servers: (env.NATS_URLS ?? '').split(','), node: env.NODE ?? 'a' }),
  });
  process.on('message', async (raw) => {
    const { id, op, args } = raw as { id: number; op: string; args: { greeting?: string } };
    try {
      let value: unknown;
      if (op === 'update') {
        const r = await app.config.update({ greeting: args.greeting ?? '' });
        value = { version: r.version, accepted: r.accepted, workers: r.workers.length };
      } else if (op === 'hits') value = (await app.bus.store('hits').get('/')) ?? 0;
      else if (op === 'versions') {
        const rs = await app.bus.callAll('config');
        value = rs.map((r) => ({
          node: r.node,
          workerId: r.workerId,
          version: r.status === 'fulfilled' ? r.value.version : -1,
        }));
      } else if (op === 'close') {
        await app.close();
        value = true;
        setImmediate(() => process.exit(0));
      }
      process.send?.({ id, ok: true, value });
    } catch (error) {
      process.send?.({ id, ok: false, error: String(error) });
    }
  });
  process.send?.({ ready: true });
} else {
  const bus = await connect(contract);
  bus.handle('config', () => ({
    version: bus.config.version,
    greeting: bus.config.current.greeting,
  }));
  const hits = bus.store('hits');
  http
    .createServer((req, res) => {
      hits.increment('/').then(
        () => {
          res.writeHead(200, {
            'x-route': 'GET /',
            'x-worker': String(bus.self),
            'content-type': 'text/plain',
          });
          res.end(`${bus.config.current.greeting} from ${bus.node} worker ${bus.self}\n`);
        },
        (error: unknown) => {
          res.writeHead(503, { 'x-route': 'GET /', 'x-worker': String(bus.self) });
          res.end(String(error));
        },
      );
      req.resume();
    })
    .listen(Number(env.PORT));
}
