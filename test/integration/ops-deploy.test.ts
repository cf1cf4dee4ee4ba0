/**
 * The deploy files of examples/deploy/ say what docs/operating.md says: the PM2 ecosystem file
 * loads and is fork mode with wait_ready and a kill_timeout above its drain timeout, the systemd
 * unit is Type=notify with NotifyAccess=all, SIGTERM and a stop timeout above the drain timeout,
 * the Dockerfile has a proper PID 1 and a STOPSIGNAL, nodemon stops with SIGTERM. And the app they
 * run (examples/deploy/server.ts) does what they expect of it, forked as PM2 forks it: 'ready' once
 * its workers listen, an answer over HTTP, a SIGTERM drain ending with 143 and its exit hook.
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, until } from './fixtures/supervisor-helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEPLOY = `${ROOT}examples/deploy/`;
const read = (file: string) => readFileSync(DEPLOY + file, 'utf8');

/** The `Key=value` lines of a systemd unit, by key (a key given twice: every value). */
function unitKeys(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m === null) continue;
    keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  return keys;
}

describe('examples/deploy', () => {
  it('ecosystem.config.cjs: fork mode, one instance, wait_ready, kill_timeout above the drain timeout, sendSignal SIGUSR2 for a rolling restart', () => {
    const require = createRequire(import.meta.url);
    const config = require(`${DEPLOY}ecosystem.config.cjs`) as {
      apps: Array<Record<string, unknown> & { env: Record<string, string> }>;
    };
    expect(config.apps).toHaveLength(1);
    const app = config.apps[0]!;
    expect(app).toMatchObject({ exec_mode: 'fork', instances: 1, wait_ready: true });
    const drainMs = Number(app.env.GRACEFUL_SHUTDOWN_TIMEOUT);
    expect(drainMs).toBeGreaterThan(0);
    expect(app.kill_timeout as number).toBeGreaterThan(drainMs);
    expect(app.listen_timeout as number).toBeGreaterThan(30_000); // readyTimeoutMs
    expect(read('ecosystem.config.cjs')).toContain('pm2 sendSignal SIGUSR2 api');
  });

  it('clusterbus.service: Type=notify, NotifyAccess=all, KillSignal=SIGTERM, TimeoutStopSec above the drain timeout, 143 a clean exit', () => {
    const keys = unitKeys(read('clusterbus.service'));
    const one = (key: string) => keys.get(key)?.[0];
    expect(one('Type')).toBe('notify');
    expect(one('NotifyAccess')).toBe('all');
    expect(one('KillSignal')).toBe('SIGTERM');
    const drain = keys.get('Environment')?.find((e) => e.startsWith('GRACEFUL_SHUTDOWN_TIMEOUT='));
    const drainMs = Number(drain?.split('=')[1]);
    expect(drainMs).toBeGreaterThan(0);
    expect(Number(one('TimeoutStopSec')) * 1_000).toBeGreaterThan(drainMs);
    expect(one('SuccessExitStatus')?.split(' ')).toContain('143');
    expect(one('ExecReload')).toContain('-USR2');
  });

  it('Dockerfile: node:20-slim, a proper PID 1 (tini, or docker run --init), STOPSIGNAL SIGTERM, a drain timeout below the stop grace period', () => {
    const text = read('Dockerfile');
    expect(text).toMatch(/^FROM node:20-slim$/m);
    expect(text).toMatch(/^STOPSIGNAL SIGTERM$/m);
    expect(text).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
    expect(text).toContain('docker run --init');
    const drainMs = Number(/^ENV GRACEFUL_SHUTDOWN_TIMEOUT=(\d+)$/m.exec(text)?.[1]);
    expect(drainMs).toBeLessThan(10_000); // docker stop's default grace period
  });

  it('nodemon.json: stops the primary with SIGTERM (nodemon sends SIGUSR2 by default, a rolling restart)', () => {
    const config = JSON.parse(read('nodemon.json')) as { signal: string; exec: string };
    expect(config.signal).toBe('SIGTERM');
    expect(config.exec).toContain('examples/deploy/server.ts');
  });

  it('docs/operating.md names node --env-file and node --watch', () => {
    const docs = readFileSync(`${ROOT}docs/operating.md`, 'utf8');
    expect(docs).toContain('node --env-file=.env');
    expect(docs).toContain('node --watch');
  });
});

/** A TCP port free right now. */
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

let leftover: number | undefined;
afterEach(() => {
  if (leftover !== undefined && isAlive(leftover)) process.kill(-leftover, 'SIGKILL');
  leftover = undefined;
});

describe('examples/deploy/server.ts, forked as PM2 forks it', () => {
  it("sends 'ready' once its workers listen, answers over HTTP, and on SIGTERM drains and exits with 143, its exit hook run", async () => {
    const port = await freePort();
    const child = fork(`${DEPLOY}server.ts`, ['--workers', '2'], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    leftover = child.pid;
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const messages: unknown[] = [];
    child.on('message', (m) => messages.push(m));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    await until(
      () => messages.includes('ready'),
      (x) => x,
      "the app sends 'ready'",
      30_000,
    );
    // Both workers listen before 'ready' (each calls bus.ready() in its listen callback).
    const body = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as Record<
      string,
      unknown
    >;
    expect(body).toMatchObject({
      peers: 2,
      hello: expect.stringContaining('hello from the primary'),
    });
    child.kill('SIGTERM');
    expect(await exited).toEqual({ code: 143, signal: null });
    // Its workers were drained before it exited: nothing is left of its process group.
    await until(
      () => isAlive(-child.pid!),
      (alive) => !alive,
      'the process group is gone',
      5_000,
    );
    await until(
      () => stdout,
      (s) => s.includes('primary: exiting with 143'),
      'the exit hook',
    );
    expect(stdout).toMatch(/^\[slot 0 · worker \d+\] listening on \d+$/m);
    expect(stdout).toMatch(/^\[slot 1 · worker \d+\] listening on \d+$/m);
    expect(stderr).toBe('');
  });
});
