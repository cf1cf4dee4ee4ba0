/**
 * The management API against a real cluster of forked workers: auth, every endpoint, bad bodies,
 * the request bounds, scale bounds, rolling restart progress, and /health's verdicts.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterApp, Contract, StartClusterOptions } from '../../src/index.js';
import { resolveManagementOptions } from '../../src/management/options.js';
import { ManagementServer } from '../../src/management/server.js';
import { families, samples } from '../prometheus.js';
import { contract } from './fixtures/management-contract.js';
import { forkedPids, once, rejection, start, stop, until } from './fixtures/supervisor-helpers.js';
import {
  type App,
  hangingRequest,
  rawRequest,
  request,
  startManaged,
  TOKEN,
  WORKER,
} from './management-helpers.js';

let app: App | undefined;
afterEach(async () => {
  await stop(app);
  app = undefined;
});

const PROTECTED: readonly [string, string][] = [
  ['GET', '/stats'],
  ['POST', '/restart'],
  ['GET', '/restart/some-id'],
  ['POST', '/scale'],
  ['GET', '/metrics'],
  ['GET', '/nope'],
];

describe('management options', () => {
  it('is off unless a port is given', async () => {
    app = await start(contract, WORKER, { workers: 1 });
    expect(app.management).toBeUndefined();
  });

  it('refuses a non-loopback host without a token before forking', async () => {
    const forked = forkedPids().length;
    const error = await rejection(startManaged({}, { host: '0.0.0.0', token: undefined }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/0\.0\.0\.0.*token/);
    expect(forkedPids().length).toBe(forked);
  });

  it('refuses a bad port, a bad token and a taken port with INVALID_ARGUMENT', async () => {
    expect((await rejection(startManaged({}, { port: -1 }))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(startManaged({}, { port: 1.5 }))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(startManaged({}, { token: 'has space' }))).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect((await rejection(startManaged({}, { token: '' }))).code).toBe('INVALID_ARGUMENT');
    app = await startManaged({ workers: 1 });
    const taken = await rejection(startManaged({ workers: 1 }, { port: app.management!.port }));
    expect(taken.code).toBe('INVALID_ARGUMENT');
    expect(taken.message).toContain('EADDRINUSE');
  });

  it('listens before the first fork: /health is 503 during the startup, then 200', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const starting = startManaged({}, { port });
    const statuses: number[] = [];
    let settled = false;
    starting.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    while (!settled) {
      const status = await fetch(`http://127.0.0.1:${port}/health`).then(
        (res) => res.status,
        () => 0,
      );
      statuses.push(status);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    app = await starting;
    expect(statuses).toContain(503);
    // Refused until it listens (the config and the stores load first), then never again.
    const listening = statuses.slice(statuses.findIndex((status) => status !== 0));
    expect(listening).not.toContain(0);
    expect(listening[0]).toBe(503);
    expect((await request(app, '/health')).status).toBe(200);
  });

  it('binds loopback by default, exposes its URL, and app.close() closes it', async () => {
    app = await startManaged();
    const { url, host, port } = app.management!;
    expect(host).toBe('127.0.0.1');
    expect(port).toBeGreaterThan(0);
    expect(url).toBe(`http://127.0.0.1:${port}/`);
    expect((await request(app, '/health')).status).toBe(200);
    const closing = app;
    await stop(app);
    app = undefined;
    await expect(fetch(`${url}health`)).rejects.toThrow();
    // What it bound stays readable, as plain data.
    expect(closing.management).toEqual({ url, host, port });
    expect(Object.isFrozen(closing.management)).toBe(true);
  });
});

describe('auth', () => {
  it('GET /health needs no token; every other endpoint needs the right bearer token', async () => {
    app = await startManaged();
    const health = await request(app, '/health', { token: null });
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok', slots: 2, healthy: 2, problems: [] });
    const sameLength = `${TOKEN.slice(0, -1)}${TOKEN.endsWith('x') ? 'y' : 'x'}`;
    expect(sameLength).toHaveLength(TOKEN.length);
    for (const [method, path] of PROTECTED) {
      for (const token of [null, 'wrong', sameLength, `${TOKEN}x`]) {
        const answer = await request(app, path, {
          method,
          token,
          body: method === 'POST' ? '{}' : undefined,
        });
        expect(answer.status, `${method} ${path} with ${token}`).toBe(401);
        expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer/);
        expect(answer.body.error).toMatch(/token/);
      }
      // Other schemes, and the token in the URL, are not accepted.
      const basic = await request(app, path, {
        method,
        token: null,
        headers: { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` },
      });
      expect(basic.status).toBe(401);
      const inUrl = await request(app, `${path}?token=${TOKEN}&access_token=${TOKEN}`, {
        method,
        token: null,
      });
      expect(inUrl.status).toBe(401);
    }
    expect((await request(app, '/stats')).status).toBe(200);
    expect(
      (
        await request(app, '/stats', {
          token: null,
          headers: { authorization: `bearer  ${TOKEN}` },
        })
      ).status,
    ).toBe(200);
  });

  it('with no token on loopback, the protected endpoints answer 403 saying to set one', async () => {
    app = await startManaged({}, { token: undefined });
    expect((await request(app, '/health', { token: null })).status).toBe(200);
    for (const [method, path] of PROTECTED) {
      for (const token of [null, 'anything']) {
        const answer = await request(app, path, { method, token });
        expect(answer.status, `${method} ${path}`).toBe(403);
        expect(answer.body.error).toMatch(/set management\.token \(or CLUSTER_API_TOKEN\)/);
      }
    }
  });
});

describe('endpoints', () => {
  it('GET /stats: the primary, the cluster, one entry per worker with its last report', async () => {
    app = await startManaged();
    const running = app;
    await running.bus.call({ slot: 0 }, 'count', { n: 5 });
    await running.bus.call({ slot: 1 }, 'count', { n: 2 });
    for (let i = 0; i < 10; i++) await running.bus.call({ slot: 1 }, 'whoami');
    const stats = await until(
      async () => (await request(running, '/stats')).body,
      (s) =>
        s.primary.requests === 7 &&
        s.workers.every((w: { callsPerSecond: number | null }) => w.callsPerSecond !== null) &&
        s.workers[1].callsServed >= 11,
      'the reports carry the counts',
    );
    expect(stats.primary).toMatchObject({
      pid: process.pid,
      requests: 7,
      restarts: 0,
      crashes: 0,
      workersSpawned: 2,
    });
    expect(stats.primary.uptimeMs).toBeGreaterThan(0);
    expect(stats.cluster).toEqual({ workers: 2, active: 2, min: 1, max: null, healthy: 2 });
    expect(stats.restart).toBeNull();
    expect(stats.scale).toBeNull();
    const ids = running.workers().map((w) => w.id);
    expect(stats.workers.map((w: { workerId: number }) => w.workerId)).toEqual(ids);
    for (const [i, w] of stats.workers.entries()) {
      expect(w).toMatchObject({
        slot: i,
        pid: running.workers()[i]!.pid,
        state: 'ready',
        healthy: true,
        restarts: 0,
        inFlightCalls: 0,
      });
      expect(w.uptimeMs).toBeGreaterThan(0);
      expect(w.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
      expect(w.heapUsedBytes).toBeGreaterThan(0);
      expect(w.heapUsedBytes).toBeLessThan(w.rssBytes);
      expect(w.eventLoopDelayMs.p99).toBeGreaterThanOrEqual(w.eventLoopDelayMs.p50);
      expect(w.lastReportAt).toBeGreaterThan(Date.now() - 10_000);
      expect(w.callsPerSecond).toBeGreaterThanOrEqual(0);
    }
    // A failing app check is reported, and does not make the worker unhealthy here.
    const report = running.health().workers[0]!.report!;
    expect(report.checks['always-fails']).toMatchObject({ ok: false });
    expect((await request(running, '/health', { token: null })).status).toBe(200);
    expect(stats.workers[0].requests).toBe(5);
    expect(stats.workers[1].requests).toBe(2);
    // 1 count + 10 whoami on slot 1; 1 count on slot 0 (system calls are not counted).
    expect(stats.workers[1].callsServed).toBe(11);
    expect(stats.workers[0].callsServed).toBe(1);
  });

  it('GET /stats: callDurationMs, the time a worker took to serve its requests over its last interval', async () => {
    app = await startManaged();
    const running = app;
    // Slot 1 serves requests that take 30 ms, for as long as it takes to see them reported.
    let calling = true;
    const load = (async () => {
      while (calling) await running.bus.call({ slot: 1 }, 'sleep', { ms: 30 });
    })();
    try {
      const stats = await until(
        async () => (await request(running, '/stats')).body,
        (s) => s.workers[1].callDurationMs !== null && s.workers[0].lastReportAt !== null,
        'a report with serve times',
        20_000,
      );
      const served = stats.workers[1].callDurationMs;
      expect(served.count).toBeGreaterThanOrEqual(1);
      expect(served.p50).toBeGreaterThanOrEqual(25);
      expect(served.p99).toBeGreaterThanOrEqual(25);
      expect(served.p99).toBeGreaterThanOrEqual(served.p50);
      expect(served.max).toBeGreaterThanOrEqual(served.p99);
      // Generous: the machine may be loaded, but a 30 ms sleep is not a 5 s one.
      expect(served.max).toBeLessThan(5_000);
      // Slot 0 served nothing: reported, with no serve times.
      expect(stats.workers[0].callDurationMs).toBeNull();
      // The primary's view of the report carries the same figures, unrounded.
      const report = running.health().workers[1]!.report!;
      expect(report.callDurationMs === null || report.callDurationMs.p99 >= 25).toBe(true);
    } finally {
      calling = false;
      await load;
    }
  });

  it("GET /metrics: the cluster's metrics in Prometheus's text format, with a worker per slot", async () => {
    app = await startManaged({ workers: 2 });
    const answer = await request(app, '/metrics');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const parsed = families(answer.text);
    const slots = samples(parsed, 'clusterbus_worker_rss_bytes').map((s) => s.labels.slot);
    expect(new Set(slots)).toEqual(new Set(['0', '1']));
  });

  it('unknown path 404, wrong method 405 with Allow', async () => {
    app = await startManaged({ workers: 1 });
    expect((await request(app, '/nope')).status).toBe(404);
    expect((await request(app, '/restart/a/b')).status).toBe(404);
    const wrong = await request(app, '/stats', { method: 'POST', body: '{}' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, HEAD');
    const restart = await request(app, '/restart', { method: 'GET' });
    expect(restart.status).toBe(405);
    expect(restart.headers.get('allow')).toBe('POST');
    const health = await request(app, '/health', { method: 'DELETE', token: null });
    expect(health.status).toBe(405);
    expect(health.headers.get('allow')).toBe('GET, HEAD');
    // HEAD is GET without the body: for probes.
    const head = await request(app, '/health', { method: 'HEAD', token: null });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect((await request(app, '/stats', { method: 'HEAD', token: null })).status).toBe(401);
  });
});

describe('operations', () => {
  it('POST /restart: 202 with an id; GET /restart/:id shows it running, then done with every worker replaced', async () => {
    app = await startManaged();
    const counted = app;
    await counted.bus.call({ slot: 0 }, 'count', { n: 3 });
    await counted.bus.call({ slot: 1 }, 'count', { n: 4 });
    await until(
      async () => (await request(counted, '/stats')).body.primary.requests,
      (n) => n === 7,
      'the counts reported',
    );
    const before = app.workers().map((w) => w.id);
    const started = await request(app, '/restart', { method: 'POST' });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ state: 'running', total: 2, replaced: 0, error: null });
    expect(started.headers.get('location')).toBe(`/restart/${started.body.id}`);
    // A second POST while it runs joins it.
    const again = await request(app, '/restart', { method: 'POST' });
    expect(again.body.id).toBe(started.body.id);
    const seen = new Set<number>();
    const healthDuring: number[] = [];
    const running = app;
    const done = await until(
      async () => {
        const body = (await request(running, `/restart/${started.body.id}`)).body;
        seen.add(body.replaced);
        // The old worker serves its slot until the new one is ready: never a gap.
        healthDuring.push((await request(running, '/health', { token: null })).status);
        return body;
      },
      (b) => b.state !== 'running',
      'the restart ends',
      30_000,
    );
    expect(done).toMatchObject({ state: 'done', total: 2, replaced: 2, error: null });
    expect(done.endedAt).toBeGreaterThanOrEqual(done.startedAt);
    expect(done.slots.map((s: { from: number }) => s.from)).toEqual(before);
    const after = app.workers().map((w) => w.id);
    expect(after.some((id) => before.includes(id))).toBe(false);
    expect(done.slots.map((s: { to: number }) => s.to)).toEqual(after);
    expect([...seen].every((n) => n >= 0 && n <= 2)).toBe(true);
    expect(healthDuring.length).toBeGreaterThan(0);
    expect(healthDuring.every((status) => status === 200)).toBe(true);
    const stats = (await request(app, '/stats')).body;
    expect(stats.restart).toEqual(done);
    expect(stats.primary).toMatchObject({ restarts: 2, crashes: 0, workersSpawned: 4 });
    expect(stats.workers.map((w: { restarts: number }) => w.restarts)).toEqual([1, 1]);
    // The exited workers' counts stay in the total.
    expect(stats.primary.requests).toBe(7);
    expect((await request(app, '/restart/unknown')).status).toBe(404);
  }, 45_000);

  it('POST /scale: bad bodies get 400 with zod issues; a good one 202 and the cluster scales', async () => {
    app = await startManaged({ workers: 1 });
    for (const body of [
      '',
      'not json',
      '{"workers": 0}',
      '{"workers": 1.5}',
      '{"workers": "2"}',
      '{}',
      '[]',
      '{"workers": 2, "x": 1}',
      '{"workers": -3}',
    ]) {
      const answer = await request(app, '/scale', { method: 'POST', body });
      expect(answer.status, body).toBe(400);
      expect(answer.body.issues.length, body).toBeGreaterThan(0);
      for (const issue of answer.body.issues) {
        expect(issue).toMatchObject({ code: expect.any(String), message: expect.any(String) });
      }
    }
    const notJson = await request(app, '/scale', { method: 'POST', body: '{"workers": ' });
    expect(notJson.body.issues).toEqual([
      { code: 'invalid_json', path: [], message: expect.any(String) },
    ]);
    const notInt = await request(app, '/scale', { method: 'POST', body: '{"workers": 1.5}' });
    expect(notInt.body.issues[0]).toMatchObject({ path: ['workers'] });
    expect(app.workers()).toHaveLength(1);
    const answer = await request(app, '/scale', { method: 'POST', body: '{"workers": 2}' });
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ state: 'running', from: 1, to: 2 });
    const running = app;
    const stats = await until(
      async () => (await request(running, '/stats')).body,
      (s) => s.scale.state === 'done' && s.cluster.active === 2,
      'scaled to 2',
      30_000,
    );
    expect(stats.cluster.workers).toBe(2);
    expect(stats.workers[1].restarts).toBe(0);
  }, 45_000);

  it('POST /scale outside min..max: 409 and the count is unchanged', async () => {
    const bounded = { minWorkers: 2, maxWorkers: 3 } as Partial<
      StartClusterOptions<typeof contract>
    >;
    app = await startManaged(bounded);
    for (const workers of [1, 4, 100]) {
      const answer = await request(app, '/scale', {
        method: 'POST',
        body: JSON.stringify({ workers }),
      });
      expect(answer.status).toBe(409);
      expect(answer.body).toMatchObject({ min: 2, max: 3 });
      expect(answer.body.error).toMatch(/minimum of 2|maximum of 3/);
    }
    const stats = (await request(app, '/stats')).body;
    expect(stats.cluster).toMatchObject({ workers: 2, min: 2, max: 3 });
    expect(stats.scale).toBeNull();
    expect(app.workers()).toHaveLength(2);
  });
});

describe('request bounds', () => {
  it('a body over maxBodyBytes gets 413, declared or streamed', async () => {
    app = await startManaged({ workers: 1 }, { maxBodyBytes: 64 });
    const big = JSON.stringify({ workers: 1, pad: 'x'.repeat(100) });
    const declared = await request(app, '/scale', { method: 'POST', body: big });
    expect(declared.status).toBe(413);
    expect(declared.body.error).toMatch(/maxBodyBytes \(64 bytes\)/);
    const chunked = await rawRequest(
      app,
      `POST /scale HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked`,
      `64\r\n${'x'.repeat(100)}\r\n0\r\n\r\n`,
    );
    expect(chunked.status).toBe(413);
    expect(app.workers()).toHaveLength(1);
  });

  it('a request not complete within requestTimeoutMs gets 408', async () => {
    app = await startManaged({ workers: 1 }, { requestTimeoutMs: 500 });
    const answer = await rawRequest(
      app,
      `POST /scale HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 100`,
      '{"work',
    );
    expect(answer.status).toBe(408);
    expect(answer.ms).toBeGreaterThanOrEqual(450);
    expect(answer.ms).toBeLessThan(10_000);
  });

  it('more than maxConcurrentRequests at once get 503 with Retry-After', async () => {
    app = await startManaged({ workers: 1 }, { maxConcurrentRequests: 2 });
    const hanging = [await hangingRequest(app, '/scale'), await hangingRequest(app, '/scale')];
    try {
      const running = app;
      // The server has both requests once a third is refused.
      const refused = await until(
        () => request(running, '/health', { token: null }),
        (a) => a.status === 503,
        'a third request is refused',
      );
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.body.error).toMatch(/maxConcurrentRequests 2/);
    } finally {
      for (const socket of hanging) socket.destroy();
    }
    const running = app;
    await until(
      () => request(running, '/health', { token: null }),
      (a) => a.status === 200,
      'served again once they are gone',
    );
  });
});

describe('more bounds, the favicon, and the metrics provider', () => {
  it('headers that take longer than requestTimeoutMs get 408; headers over 16 KiB get 431', async () => {
    app = await startManaged({ workers: 1 }, { requestTimeoutMs: 500 });
    const slow = await rawRequest(
      app,
      'GET /stats HTTP/1.1\r\nHost: x\r\nX-Slow: 1',
      '',
      15_000,
      false,
    );
    expect(slow.status).toBe(408);
    const big = await rawRequest(
      app,
      `GET /stats HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(20_000)}`,
    );
    expect(big.status).toBe(431);
    expect((await request(app, '/favicon.ico', { token: null })).status).toBe(204);
  });

  it('GET /metrics answers what the provider gives; a provider that throws gets 500', async () => {
    app = await startManaged({ workers: 1 });
    const text = '# TYPE up gauge\nup 1\n';
    let fail = false;
    const server = await ManagementServer.start(
      app as unknown as ClusterApp<Contract>,
      resolveManagementOptions({ port: 0, token: TOKEN })!,
      {
        bounds: () => ({ min: 1, max: null }),
        metrics: async () => {
          if (fail) throw new Error('scrape failed');
          return {
            status: 200,
            contentType: 'text/plain; version=0.0.4; charset=utf-8',
            body: text,
          };
        },
      },
    );
    try {
      const url = new URL('metrics', server.url);
      const headers = { authorization: `Bearer ${TOKEN}` };
      const ok = await fetch(url, { headers });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(await ok.text()).toBe(text);
      expect((await fetch(url)).status).toBe(401);
      fail = true;
      const failed = await fetch(url, { headers });
      expect(failed.status).toBe(500);
      expect(((await failed.json()) as { error: string }).error).toBe(
        'internal error: scrape failed',
      );
    } finally {
      await server.close();
    }
  });
});

describe('GET /health verdicts', () => {
  it('503 while a worker the monitor declared unhealthy still holds its slot, 200 once replaced', async () => {
    app = await startManaged({ health: { intervalMs: 100, misses: 2 }, drainTimeoutMs: 500 });
    const running = app;
    const declared = once(running, 'worker:unhealthy');
    await running.bus.call({ slot: 1 }, 'block');
    const { workerId } = await declared;
    const answer = await request(running, '/health', { token: null });
    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ status: 'unhealthy', slots: 2, healthy: 1 });
    expect(answer.body.problems).toEqual([
      { slot: 1, reason: expect.stringContaining(`worker ${workerId}`) },
    ]);
    const stats = (await request(running, '/stats')).body;
    expect(stats.workers.find((w: { workerId: number }) => w.workerId === workerId).healthy).toBe(
      false,
    );
    await until(
      () => request(running, '/health', { token: null }),
      (a) => a.status === 200,
      'healthy again once the replacement is ready',
      20_000,
    );
  }, 30_000);

  it('503 when a slot is stopped at its restart limit', async () => {
    app = await startManaged({ maxRestarts: 0 });
    const running = app;
    const limit = once(running, 'worker:restart-limit');
    await running.bus.call({ slot: 0 }, 'die');
    await limit;
    const answer = await request(running, '/health', { token: null });
    expect(answer.status).toBe(503);
    expect(answer.body).toEqual({
      status: 'unhealthy',
      slots: 2,
      healthy: 1,
      problems: [{ slot: 0, reason: 'restart limit' }],
    });
    const stats = (await request(running, '/stats')).body;
    expect(stats.primary).toMatchObject({ crashes: 1, restarts: 0, workersSpawned: 2 });
    expect(stats.cluster).toMatchObject({ workers: 2, active: 1, healthy: 1 });
  });
});
