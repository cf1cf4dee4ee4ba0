/**
 * Case H's load generator, in a process of its own (so that its CPU is not the primary's):
 * autocannon against the HTTP demo's port with the demo's request mix, for a number of seconds.
 * Usage: node --import tsx bench/http-load.ts PORT SECONDS CONNECTIONS; prints one JSON line.
 *
 * @module
 */
import autocannon from 'autocannon';

/** The demo's mix (examples/http-cluster/demo.ts), every connection cycling through it. */
export const HTTP_MIX: autocannon.Request[] = [
  { method: 'GET', path: '/cache?key=product:1' },
  { method: 'GET', path: '/peer' },
  { method: 'GET', path: '/cache?key=product:2' },
  { method: 'GET', path: '/primary' },
  { method: 'GET', path: '/cache?key=product:1' },
  { method: 'POST', path: '/invalidate?key=product:1' },
  { method: 'GET', path: '/' },
];

/** What the load saw. */
export interface HttpLoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly p50Ms: number;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [port, seconds, connections] = process.argv.slice(2).map(Number) as [
    number,
    number,
    number,
  ];
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration: seconds,
    requests: HTTP_MIX,
  });
  const out: HttpLoadResult = {
    requests: result.requests.total,
    seconds: result.duration,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    p50Ms: result.latency.p50,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
