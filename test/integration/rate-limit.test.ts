/**
 * `clusterbus/express-rate-limit` with the real express and express-rate-limit, under autocannon
 * load, across 4 real workers sharing one port: the limit holds for the whole cluster exactly,
 * with the window's reset time, and the window resets.
 */
import cluster from 'node:cluster';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterApp, startCluster } from '../../src/index.js';
import { contract } from './fixtures/adapters-contract.js';
import { forkedPids, isAlive } from './fixtures/common.js';

const WORKER = fileURLToPath(new URL('./fixtures/adapters-worker.ts', import.meta.url));
const LIMIT = 150;
const WINDOW_MS = 6_000;

let app: ClusterApp<typeof contract> | undefined;
let port = 0;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port: p } = s.address() as net.AddressInfo;
      s.close(() => resolve(p));
    });
  });
}

beforeAll(async () => {
  port = await freePort();
  app = await startCluster({
    contract,
    workers: 4,
    exec: WORKER,
    execArgv: ['--import', 'tsx'],
    env: { ADAPTERS_PORT: String(port), RL_LIMIT: String(LIMIT), RL_WINDOW_MS: String(WINDOW_MS) },
  });
});

afterAll(async () => {
  const a = app;
  app = undefined;
  if (a === undefined) return;
  await a.close();
  expect(a.bus.pendingCount).toBe(0);
  expect(forkedPids().filter(isAlive)).toEqual([]);
  expect(Object.keys(cluster.workers ?? {})).toEqual([]);
});

interface Tally {
  readonly statuses: Record<number, number>;
  /** 2xx responses by the worker that sent them. */
  readonly okByWorker: Record<string, number>;
  /** The draft-8 `RateLimit` header's `t` (seconds to the reset) of each response. */
  readonly resetsS: number[];
  /** The header's `r` (requests left) of each 2xx response, by window (its reset time). */
  readonly windows: Map<number, number[]>;
  readonly errors: number;
}

/** `amount` GETs over `connections` keep-alive connections, every response tallied. */
function load(amount: number, connections: number): Promise<Tally> {
  const statuses: Record<number, number> = {};
  const okByWorker: Record<string, number> = {};
  const resetsS: number[] = [];
  const windows = new Map<number, number[]>();
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `http://127.0.0.1:${port}/`,
        connections,
        amount,
        timeout: 20,
        requests: [
          {
            method: 'GET',
            onResponse: (
              status: number,
              _body: string,
              _c: object,
              headers?: Record<string, unknown>,
            ) => {
              statuses[status] = (statuses[status] ?? 0) + 1;
              const header = (h: string) => {
                const name = Object.keys(headers ?? {}).find((k) => k.toLowerCase() === h);
                return name === undefined ? '' : String(headers?.[name]);
              };
              if (status >= 200 && status < 300) {
                const w = header('x-worker') || '?';
                okByWorker[w] = (okByWorker[w] ?? 0) + 1;
              }
              // draft-8: `RateLimit: "<policy>"; r=<remaining>; t=<seconds to the reset>`.
              const value = header('ratelimit');
              const t = /;\s*t=(\d+)/.exec(value);
              if (t !== null) resetsS.push(Number(t[1]));
              const r = /;\s*r=(\d+)/.exec(value);
              if (r !== null && status === 200) {
                // By window (its reset time, from the route): a slow load may span two.
                const reset = Number(header('x-reset'));
                windows.set(reset, [...(windows.get(reset) ?? []), Number(r[1])]);
              }
            },
          },
        ],
      },
      (error: unknown, result) =>
        error
          ? reject(error)
          : resolve({ statuses, okByWorker, resetsS, windows, errors: result.errors }),
    );
    instance.on('error', reject);
  });
}

/** In each window, the 2xx got the counts 1..n (remaining limit-1..limit-n), n <= limit. */
function expectExactWindows(windows: Map<number, number[]>): void {
  for (const remaining of windows.values()) {
    const n = remaining.length;
    expect(n).toBeLessThanOrEqual(LIMIT);
    expect([...remaining].sort((a, b) => a - b)).toEqual(
      Array.from({ length: n }, (_, i) => LIMIT - n + i),
    );
  }
}

describe('ClusterStore (express-rate-limit 8) under autocannon load across 4 workers', () => {
  it('lets exactly `limit` requests through for the whole cluster, answers the rest 429, and resets with the window', async () => {
    const startedAt = Date.now();
    const first = await load(LIMIT * 4, 32);
    expect(first.errors).toBe(0);
    expect((first.statuses[200] ?? 0) + (first.statuses[429] ?? 0)).toBe(LIMIT * 4);
    // Exact for the cluster, in each window: `limit` 2xx, not 4 x `limit`; each let-through
    // request got its own count, 1..limit (remaining limit-1..0). The load fits in one window
    // (6 s) unless the machine is very slow; then the next window starts its own count.
    expectExactWindows(first.windows);
    const [firstWindow] = [...first.windows.keys()].sort((x, y) => x - y);
    expect(first.windows.get(firstWindow!)).toHaveLength(LIMIT);
    if (first.windows.size === 1) expect(first.statuses).toEqual({ 200: LIMIT, 429: LIMIT * 3 });
    // Served by several workers: a per-worker limit would have let 4 x 150 through.
    expect(Object.keys(first.okByWorker).length).toBeGreaterThanOrEqual(2);
    // Every response names its window's end: at most windowMs away.
    expect(first.resetsS).toHaveLength(LIMIT * 4);
    expect(Math.max(...first.resetsS)).toBeLessThanOrEqual(WINDOW_MS / 1_000);
    expect(firstWindow!).toBeGreaterThan(startedAt);
    expect(firstWindow!).toBeLessThanOrEqual(startedAt + WINDOW_MS + 1_000);

    // The limiter's own view, from a worker: the hits, and the reset time = the entry's expiry.
    const info = await app!.bus.call('any', 'rlGet', { key: '127.0.0.1' });
    expect(await app!.bus.store('rateLimit').keys()).toEqual(['rl:127.0.0.1']);
    const stored = await app!.bus.store('rateLimit').entry('rl:127.0.0.1');
    expect(info).toEqual({ totalHits: stored!.value, resetTime: stored!.expiresAt });
    const lastWindow = Math.max(...first.windows.keys());
    expect(stored!.expiresAt).toBe(lastWindow);
    if (first.windows.size === 1) expect(stored!.value).toBe(LIMIT * 4);

    // The window ends for everyone at once: the next one lets `limit` through again.
    await new Promise((r) => setTimeout(r, Math.max(0, stored!.expiresAt! - Date.now()) + 100));
    const second = await load(LIMIT * 2, 16);
    expect(second.errors).toBe(0);
    expectExactWindows(second.windows);
    const next = Math.min(...second.windows.keys());
    expect(next).toBeGreaterThan(lastWindow);
    expect(second.windows.get(next)).toHaveLength(LIMIT);
  });
});
