/**
 * A worker of the HTTP cluster: serves HTTP on the port every worker shares, and uses the bus for
 * the routes that need another process.
 *
 *   GET  /                  the greeting of the cluster's config (app.config.update() changes it)
 *   GET  /cache?key=K       this worker's in-memory cache (filled on a miss)
 *   GET  /peer              another worker answers, through the primary
 *   GET  /primary           the primary answers
 *   POST /invalidate?key=K  every worker drops K from its cache (GET works too)
 *
 * Every 2xx response is counted in the cluster's `hits` store (held by the primary), by route.
 * The worker is ready once it listens, and drains gracefully (`bus.closeOnDrain`): a rolling
 * restart or a scale-down fails no request.
 */
import http from 'node:http';
import { BusError, connect } from 'clusterbus';
import { contract, ROUTES, type Route, type WorkerStats } from './contract.js';
import { startCpuRoutes } from './cpu.js';

/** How long a route waits for the bus before answering 504, in ms. */
const BUS_TIMEOUT_MS = 2_000;
/** How long a `hits` increment may take before it counts as failed, in ms. */
const STORE_TIMEOUT_MS = 5_000;
/** How many distinct invalidation keys `stats` reports, the most recent ones. */
const RECENT_KEYS = 32;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Connects to the bus, listens on `port` (shared with the other workers), then is ready. */
export async function runWorker(port: number): Promise<void> {
  // manualReady: the primary routes nothing to this worker, and a rolling restart does not drain
  // the worker it replaces, until this one listens (bus.ready() below).
  const bus = await connect(contract, { manualReady: true });
  const self = bus.self;
  const hits = bus.store('hits');
  const cpu = startCpuRoutes(bus); // GET /cpu and /cpu-inline

  // ---------------------------------------------------------------- state, all per worker
  const requests = Object.fromEntries(ROUTES.map((r) => [r, 0])) as Record<Route, number>;
  const increments = { applied: 0, failed: 0 };
  const pendingIncrements = new Set<Promise<void>>();
  const peerCalls = { answered: 0, rerouted: 0 };
  const cache = new Map<string, { key: string; computedBy: number; computedAt: number }>();
  const cacheStats = { hits: 0, misses: 0 };
  const invalidations = { published: 0, applied: 0 };
  const recentKeys = new Set<string>(); // the last RECENT_KEYS distinct keys applied, oldest first
  let peers: number[] = [];

  /**
   * Counts one 2xx response of `route` in the shared store. Called on the response's 'finish':
   * the whole response has been handed to the OS, so a client that keeps its connection open
   * receives it. Counting earlier would count responses that a crash or a closed connection
   * stops; counting later (say, on the client's next request) would need the client's help.
   */
  function countHit(route: Route): void {
    const increment = hits.increment(route, 1, { timeoutMs: STORE_TIMEOUT_MS }).then(
      () => {
        increments.applied++;
      },
      () => {
        increments.failed++;
      },
    );
    pendingIncrements.add(increment);
    void increment.finally(() => pendingIncrements.delete(increment));
  }

  // ---------------------------------------------------------------- the bus
  bus.subscribe('cache.invalidate', ({ key }) => {
    cache.delete(key);
    invalidations.applied++;
    recentKeys.delete(key);
    recentKeys.add(key);
    if (recentKeys.size > RECENT_KEYS) recentKeys.delete(recentKeys.values().next().value!);
  });
  bus.subscribe('cluster.members', ({ workers }) => {
    peers = workers.filter((id) => id !== self);
  });
  bus.handle('hello', () => ({ workerId: self, pid: process.pid, answered: ++peerCalls.answered }));
  bus.handle('stats', async (): Promise<WorkerStats> => {
    // Answer once every increment issued so far has settled, so that the store is up to date
    // with every response this worker has finished when the caller reads it.
    await Promise.allSettled([...pendingIncrements]);
    return {
      workerId: self,
      slot: bus.slot,
      pid: process.pid,
      config: { version: bus.config.version, greeting: bus.config.current.greeting },
      requests,
      hits: increments,
      peerCalls,
      cache: { entries: cache.size, ...cacheStats },
      invalidations: { ...invalidations, recentKeys: [...recentKeys] },
    };
  });

  /** Greets a random other worker; if it just went away, asks whichever worker the primary picks. */
  async function greetPeer() {
    const peer = peers[Math.floor(Math.random() * peers.length)];
    const options = { timeoutMs: BUS_TIMEOUT_MS };
    if (peer === undefined) return bus.call('any', 'hello', { from: self }, options);
    try {
      return await bus.call(peer, 'hello', { from: self }, options);
    } catch (error) {
      if (!(error instanceof BusError)) throw error;
      if (error.code !== 'NO_TARGET' && error.code !== 'TARGET_EXITED') throw error;
      peerCalls.rerouted++;
      return bus.call('any', 'hello', { from: self }, options);
    }
  }

  // ---------------------------------------------------------------- HTTP
  async function route(path: Route, method: string, url: URL): Promise<[number, unknown]> {
    switch (path) {
      case '/':
        return [
          200,
          {
            worker: self,
            pid: process.pid,
            greeting: bus.config.current.greeting,
            configVersion: bus.config.version,
          },
        ];
      case '/cache': {
        const key = requireKey(url);
        let value = cache.get(key);
        if (value === undefined) {
          cacheStats.misses++;
          value = { key, computedBy: self, computedAt: Date.now() };
          cache.set(key, value);
          return [200, { worker: self, hit: false, value }];
        }
        cacheStats.hits++;
        return [200, { worker: self, hit: true, value }];
      }
      case '/peer':
        return [200, { worker: self, peer: await greetPeer() }];
      case '/primary':
        return [
          200,
          {
            worker: self,
            primary: await bus.call('primary', 'clusterInfo', undefined, {
              timeoutMs: BUS_TIMEOUT_MS,
            }),
          },
        ];
      case '/invalidate': {
        if (method !== 'POST' && method !== 'GET') throw new HttpError(405, 'use POST');
        const key = requireKey(url);
        bus.publish('cache.invalidate', { key });
        invalidations.published++;
        return [202, { worker: self, published: key }];
      }
      case '/cpu':
        return [200, { worker: self, report: await cpu.pooled() }];
      case '/cpu-inline':
        return [200, { worker: self, report: cpu.inline() }];
      default:
        throw new HttpError(404, 'no such route');
    }
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = (ROUTES as readonly string[]).includes(url.pathname)
      ? (url.pathname as Route)
      : 'other';
    // Which worker and route answered, for clients (the demo counts responses by these).
    res.setHeader('x-worker', String(self));
    res.setHeader('x-route', path);
    res.once('finish', () => {
      requests[path]++;
      bus.health.countRequests(); // the management API's primary.requests
      if (res.statusCode >= 200 && res.statusCode < 300) countHit(path);
    });
    route(path, req.method ?? 'GET', url).then(
      ([status, body]) => reply(res, status, body),
      (error: unknown) => {
        if (error instanceof HttpError) reply(res, error.status, { error: error.message });
        else if (error instanceof BusError) {
          reply(res, error.code === 'TIMEOUT' ? 504 : 502, {
            error: error.code,
            message: error.message,
          });
        } else reply(res, 500, { error: String(error) });
      },
    );
  });
  // When the primary drains this worker (rolling restart, replacement, app.close()): stop
  // accepting connections, answer what comes on open ones with `Connection: close`, and let the
  // drain wait until every connection has ended (and every increment has settled).
  bus.closeOnDrain(server);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve();
    });
  });
  bus.ready();
}

function requireKey(url: URL): string {
  const key = url.searchParams.get('key');
  if (key === null || key === '') throw new HttpError(400, 'missing ?key=');
  return key;
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
  });
  res.end(json);
}
