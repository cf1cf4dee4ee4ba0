/**
 * A worker of the HTTP cluster: serves HTTP on the port every worker shares, and uses the bus for
 * the routes that need another process.
 *
 *   GET  /                  answered locally
 *   GET  /cache?key=K       this worker's in-memory cache (filled on a miss)
 *   GET  /peer              another worker answers, through the primary
 *   GET  /primary           the primary answers
 *   POST /invalidate?key=K  every worker drops K from its cache (GET works too)
 */
import http from 'node:http';
import { BusError, connect } from 'clusterbus';
import { contract, ROUTES, type Route, type WorkerStats } from './contract.js';

/** How long a route waits for the bus before answering 504, in ms. */
const BUS_TIMEOUT_MS = 2_000;
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

/** Connects to the bus, then listens on `port` (shared with the other workers). */
export async function runWorker(port: number): Promise<void> {
  const bus = await connect(contract);
  const self = bus.self;

  // ---------------------------------------------------------------- state, all per worker
  const requests = Object.fromEntries(ROUTES.map((r) => [r, 0])) as Record<Route, number>;
  const peerCalls = { answered: 0, rerouted: 0 };
  const cache = new Map<string, { key: string; computedBy: number; computedAt: number }>();
  const cacheStats = { hits: 0, misses: 0 };
  const invalidations = { published: 0, applied: 0 };
  const recentKeys = new Set<string>(); // the last RECENT_KEYS distinct keys applied, oldest first
  let peers: number[] = [];

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
  bus.handle(
    'stats',
    (): WorkerStats => ({
      workerId: self,
      pid: process.pid,
      requests,
      peerCalls,
      cache: { entries: cache.size, ...cacheStats },
      invalidations: { ...invalidations, recentKeys: [...recentKeys] },
    }),
  );

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
        return [200, { worker: self, pid: process.pid }];
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
    res.on('finish', () => requests[path]++);
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

  // The primary stops the workers (app.close() disconnects them); when this worker's channel to
  // the primary closes, stop serving, so that idle keep-alive connections do not keep it alive.
  void bus.closed.then(() => {
    server.close();
    server.closeIdleConnections();
  });
  // Ctrl+C (or a service manager's stop) signals every process of the group: let the primary,
  // which closes the cluster on SIGINT and SIGTERM, decide when this worker stops.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve();
    });
  });
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
