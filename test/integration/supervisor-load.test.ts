/**
 * Under real HTTP load (autocannon, keep-alive connections): a rolling restart of every worker,
 * and a config update, with zero failed requests. Each run is bounded to a few seconds; the
 * figures are printed.
 */
import net from 'node:net';
import autocannon from 'autocannon';
import { afterEach, expect, it } from 'vitest';
import type { ClusterApp } from '../../src/index.js';
import { contract } from './fixtures/supervisor-contract.js';
import { fixture, once, start, stop } from './fixtures/supervisor-helpers.js';

type App = ClusterApp<typeof contract>;
const HTTP_WORKER = fixture('supervisor-http-worker.ts');
const CONNECTIONS = 20;

let app: App | undefined;
afterEach(async () => {
  await stop(app);
  app = undefined;
});

/** A port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Runs autocannon for `seconds` against `port`; resolves with the figures and the error codes. */
function load(port: number, seconds: number) {
  const errors: string[] = [];
  let instance: autocannon.Instance | undefined;
  const result = new Promise<autocannon.Result & { errorCodes: string[]; endedAt: number }>(
    (resolve, reject) => {
      instance = autocannon(
        { url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, duration: seconds },
        (error, done) => {
          if (error) reject(error);
          else resolve({ ...done, errorCodes: errors, endedAt: performance.now() });
        },
      );
    },
  );
  instance?.on('reqError', (error: NodeJS.ErrnoException) =>
    errors.push(error.code ?? error.message),
  );
  return { result, stop: () => instance?.stop() };
}

function figures(result: autocannon.Result & { errorCodes: string[] }) {
  return {
    requests: result.requests.total,
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    resets: result.resets,
    errorCodes: [...new Set(result.errorCodes)],
  };
}

async function startHttp(port: number): Promise<App> {
  return start(contract, HTTP_WORKER, {
    workers: 2,
    config: { message: 'v1' },
    env: { PORT: String(port), LATENCY_MS: '2' },
    health: { intervalMs: 1_000 },
    drainTimeoutMs: 10_000,
  });
}

it('a rolling restart of every worker under load fails no request', async () => {
  const port = await freePort();
  app = await startHttp(port);
  const before = app.workers().map((w) => w.id);
  // At most 60 s: stopped 1 s after the restart, which starts after 1 s of load.
  const run = load(port, 60);
  await new Promise((r) => setTimeout(r, 1_000));
  const restart = await app.restart();
  const restartedAt = performance.now();
  await new Promise((r) => setTimeout(r, 1_000));
  run.stop();
  const result = await run.result;
  const f = figures(result);
  console.log(
    `rolling restart under load: ${JSON.stringify(f)}; restart took ${restart.durationMs} ms, ${Math.round((result.endedAt - restartedAt) / 100) / 10} s of load after it`,
  );
  // The whole restart happened under load...
  expect(restartedAt).toBeLessThan(result.endedAt);
  expect(restart.replaced.map((r) => r.from)).toEqual(before);
  // ...and not one request failed.
  expect(f).toMatchObject({ non2xx: 0, errors: 0, timeouts: 0, errorCodes: [] });
  expect(f.requests).toBeGreaterThan(1_000);
  expect(f.ok2xx).toBe(f.requests);
});

it('a config update under load applies everywhere and fails no request', async () => {
  const port = await freePort();
  app = await startHttp(port);
  const run = load(port, 3);
  await new Promise((r) => setTimeout(r, 1_000));
  const updated = once(app, 'config:update');
  const result = await app.config.update({ message: 'v2' });
  expect(result).toMatchObject({ version: 2, accepted: true });
  expect((await updated).workers).toHaveLength(2);
  const bodies = await Promise.all(
    [0, 1, 2, 3].map(async () => (await fetch(`http://127.0.0.1:${port}/`)).text()),
  );
  for (const body of bodies) expect(body).toMatch(/^v2 from slot [01]$/);
  const loadResult = await run.result;
  const f = figures(loadResult);
  console.log(`config update under load: ${JSON.stringify(f)}`);
  expect(f).toMatchObject({ non2xx: 0, errors: 0, timeouts: 0, errorCodes: [] });
  expect(f.requests).toBeGreaterThan(500);
});
