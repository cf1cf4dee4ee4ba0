/**
 * Prometheus metrics without the management API: the primary serves `GET /metrics` with
 * `node:http` and `createMetricsScraper`; each worker counts its jobs with a prom-client Counter,
 * which the primary gathers over the bus and sums. Needs prom-client (`npm install prom-client`).
 *
 * Run it with `node --import tsx examples/metrics-server.ts`: it starts the cluster, serves
 * metrics on a free port, scrapes itself once, prints what it got, and exits. With `--serve` it
 * keeps serving until Ctrl-C (`curl localhost:<port>/metrics`).
 */
import cluster from 'node:cluster';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, createMetricsScraper, defineContract, startCluster } from 'clusterbus';
import { z } from 'zod';

export const contract = defineContract({
  methods: { work: { input: z.object({ size: z.number() }), output: z.number() } },
});

if (cluster.isPrimary) {
  const app = await startCluster({
    contract,
    workers: 2,
    metrics: { collectTimeoutMs: 1_000 }, // each worker's time to answer a scrape
    signals: process.argv.includes('--serve'),
  });
  const scraper = createMetricsScraper(app);
  const server = http.createServer(async (req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    const { status, contentType, body } = await scraper.scrape(); // never rejects
    res.writeHead(status, { 'content-type': contentType }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  console.log(`metrics on ${url}`);

  for (let i = 1; i <= 10; i++) await app.bus.call('any', 'work', { size: i });

  if (process.argv.includes('--serve')) {
    app.on('close', () => server.close());
  } else {
    const response = await fetch(url);
    console.log(`GET /metrics: ${response.status} ${response.headers.get('content-type')}`);
    console.log(await response.text());
    scraper.close();
    server.close();
    await app.close();
  }
} else {
  const { Counter } = await import('prom-client');
  const jobs = new Counter({ name: 'app_jobs_total', help: 'Jobs done, by every worker.' });
  const bus = await connect(contract);
  bus.handle('work', ({ size }) => {
    jobs.inc();
    return size * 2;
  });
}
