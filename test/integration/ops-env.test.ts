/**
 * A real cluster operated from outside the code, its primary a child process forked with an IPC
 * channel as PM2 forks it: the worker count from `CLUSTER_WORKERS` and from `--workers` over it, a
 * bad variable refusing the start, the scale bounds, PM2's `'ready'` only once every worker is
 * ready, `systemd-notify --ready` run when `NOTIFY_SOCKET` is set (a fake one on PATH), the exit
 * status and exit hook on SIGTERM, the periodic cluster stats line, and `bus.peers()`.
 */
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { forkPrimary } from './fixtures/ops-helpers.js';
import { isAlive, until } from './fixtures/supervisor-helpers.js';

interface Info {
  readonly id: number;
  readonly slot: number;
  readonly pid: number;
  readonly state: string;
}

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
const tempDir = () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'clusterbus-ops-'));
  return dir;
};

/** Closes the forked primary over its channel and checks that it and its workers are gone. */
async function closeAndCheck(primary: ReturnType<typeof forkPrimary>, pids: number[]) {
  primary.proc.send({ cmd: 'close' });
  await primary.next('closed');
  expect(await primary.exited).toEqual({ code: 0, signal: null });
  for (const pid of pids) expect(isAlive(pid), `pid ${pid}`).toBe(false);
}

describe('the worker count from the environment and the command line', () => {
  it("CLUSTER_WORKERS=3 starts three workers; PM2's 'ready' comes only once all three are ready", async () => {
    const ops = tempDir();
    const primary = forkPrimary({
      env: { CLUSTER_WORKERS: '3', OPS_DIR: ops, OPS_READY_DELAY_MS: '400' },
    });
    // 'ready' arrives, and at that moment every worker had already written its marker file,
    // which it does just before bus.ready(), 400 ms after connecting.
    const readyAt = await until(
      () => primary.messages.indexOf('ready'),
      (i) => i >= 0,
      "the primary sends 'ready'",
      30_000,
    );
    const markers = readdirSync(ops).filter((f) => f.startsWith('ready-'));
    expect(markers.map((f) => f.split('-')[1]).sort()).toEqual(['0', '1', '2']);
    const started = await primary.next('started');
    // 'ready' is sent once, before startCluster resolves.
    expect(primary.messages.indexOf(started)).toBeGreaterThan(readyAt);
    expect(primary.messages.filter((m) => m === 'ready')).toHaveLength(1);
    const workers = started.workers as Info[];
    expect(workers.map((w) => [w.slot, w.state])).toEqual([
      [0, 'ready'],
      [1, 'ready'],
      [2, 'ready'],
    ]);
    await closeAndCheck(
      primary,
      workers.map((w) => w.pid),
    );
  });

  it('--workers 2 on the primary command line overrides CLUSTER_WORKERS=3', async () => {
    const primary = forkPrimary({ args: ['--workers', '2'], env: { CLUSTER_WORKERS: '3' } });
    const started = await primary.next('started');
    const workers = started.workers as Info[];
    expect(workers.map((w) => w.slot)).toEqual([0, 1]);
    await closeAndCheck(
      primary,
      workers.map((w) => w.pid),
    );
  });

  it('node --env-file=.env loads the variables: no dotenv needed', async () => {
    const ops = tempDir();
    const file = path.join(ops, '.env');
    writeFileSync(file, '# the cluster\nCLUSTER_WORKERS=2\nCLUSTER_MAX_WORKERS=2\n');
    const primary = forkPrimary({ execArgv: [`--env-file=${file}`] });
    const workers = (await primary.next('started')).workers as Info[];
    expect(workers.map((w) => w.slot)).toEqual([0, 1]);
    expect((await primary.command({ cmd: 'scale', n: 3 })).code).toBe('INVALID_ARGUMENT');
    await closeAndCheck(
      primary,
      workers.map((w) => w.pid),
    );
  });

  it('a malformed CLUSTER_WORKERS fails the start with INVALID_ARGUMENT naming it and its value; nothing is forked, no ready', async () => {
    const primary = forkPrimary({ env: { CLUSTER_WORKERS: 'eight' } });
    const failed = await primary.next('failed');
    expect(failed.code).toBe('INVALID_ARGUMENT');
    expect(failed.message).toBe(
      'startCluster: CLUSTER_WORKERS must be an integer >= 1, got the string "eight"',
    );
    expect(await primary.exited).toEqual({ code: 1, signal: null });
    expect(primary.messages).not.toContain('ready');
  });

  it('a malformed CLUSTER_WORKERS is ignored under --workers', async () => {
    const primary = forkPrimary({ args: ['--workers=1'], env: { CLUSTER_WORKERS: 'eight' } });
    const workers = (await primary.next('started')).workers as Info[];
    expect(workers).toHaveLength(1);
    await closeAndCheck(
      primary,
      workers.map((w) => w.pid),
    );
  });
});

describe('scale bounds', () => {
  it('CLUSTER_MIN_WORKERS and CLUSTER_MAX_WORKERS bound scale(): outside them INVALID_ARGUMENT, nothing changes', async () => {
    const primary = forkPrimary({
      args: ['--workers', '2'],
      env: { CLUSTER_MIN_WORKERS: '2', CLUSTER_MAX_WORKERS: '3' },
    });
    const first = (await primary.next('started')).workers as Info[];
    for (const n of [4, 1]) {
      const refused = await primary.command({ cmd: 'scale', n });
      expect(refused).toMatchObject({
        ok: false,
        code: 'INVALID_ARGUMENT',
        data: { min: 2, max: 3, requested: n },
      });
      const now = (await primary.command({ cmd: 'workers' })).value as Info[];
      expect(now.map((w) => w.pid)).toEqual(first.map((w) => w.pid));
    }
    const grown = await primary.command({ cmd: 'scale', n: 3 });
    expect(grown).toMatchObject({ ok: true, value: { from: 2, to: 3 } });
    const all = (grown.value as { workers: Info[] }).workers;
    expect(all.map((w) => w.slot)).toEqual([0, 1, 2]);
    await closeAndCheck(
      primary,
      all.map((w) => w.pid),
    );
  });
});

describe('systemd', () => {
  /** A fake `systemd-notify` that records its arguments and NOTIFY_SOCKET, then exits `code`. */
  function fakeNotify(bin: string, code: number): string {
    const log = path.join(bin, 'calls.log');
    const script = path.join(bin, 'systemd-notify');
    writeFileSync(script, `#!/bin/sh\necho "$NOTIFY_SOCKET $*" >> "${log}"\nexit ${code}\n`);
    chmodSync(script, 0o755);
    return log;
  }

  it('with NOTIFY_SOCKET set, runs systemd-notify --ready once every worker is ready', async () => {
    const bin = tempDir();
    const log = fakeNotify(bin, 0);
    const primary = forkPrimary({
      args: ['--workers', '2'],
      env: { NOTIFY_SOCKET: '/run/fake.sock', PATH: `${bin}:${process.env.PATH}` },
    });
    const workers = (await primary.next('started')).workers as Info[];
    await until(
      () => existsSync(log),
      (x) => x,
      'systemd-notify ran',
    );
    expect(readFileSync(log, 'utf8')).toBe('/run/fake.sock --ready\n');
    await closeAndCheck(
      primary,
      workers.map((w) => w.pid),
    );
    expect(readFileSync(log, 'utf8')).toBe('/run/fake.sock --ready\n');
  });

  it('a systemd-notify that fails, or is missing, is a warning: the cluster keeps running', async () => {
    const bin = tempDir();
    const log = fakeNotify(bin, 3);
    const failing = forkPrimary({
      args: ['--workers', '1'],
      env: { NOTIFY_SOCKET: '/run/fake.sock', PATH: `${bin}:${process.env.PATH}` },
    });
    const workers = (await failing.next('started')).workers as Info[];
    await until(
      () => failing.stderr(),
      (s) => s.includes('systemd-notify --ready failed'),
      'the warning',
    );
    expect(readFileSync(log, 'utf8')).toBe('/run/fake.sock --ready\n');
    expect((await failing.command({ cmd: 'workers' })).value).toHaveLength(1);
    await closeAndCheck(
      failing,
      workers.map((w) => w.pid),
    );

    const missing = forkPrimary({
      args: ['--workers', '1'],
      env: { NOTIFY_SOCKET: '/run/fake.sock', PATH: path.join(bin, 'nothing-here') },
    });
    const alone = (await missing.next('started')).workers as Info[];
    await until(
      () => missing.stderr(),
      (s) => s.includes('systemd-notify --ready failed'),
      'the warning',
    );
    await closeAndCheck(
      missing,
      alone.map((w) => w.pid),
    );
  });
});

describe('exit status and exit hooks', () => {
  it("SIGTERM closes the cluster, then the primary exits with 143 and its process.on('exit') hook runs", async () => {
    const ops = tempDir();
    const primary = forkPrimary({ args: ['--workers', '2'], env: { OPS_DIR: ops } });
    const workers = (await primary.next('started')).workers as Info[];
    primary.proc.kill('SIGTERM');
    expect(await primary.exited).toEqual({ code: 143, signal: null });
    expect(readFileSync(path.join(ops, 'exit-hook'), 'utf8')).toBe('143');
    for (const w of workers) expect(isAlive(w.pid)).toBe(false);
  });

  it('SIGINT: 130, the hook runs', async () => {
    const ops = tempDir();
    const primary = forkPrimary({ args: ['--workers', '1'], env: { OPS_DIR: ops } });
    const workers = (await primary.next('started')).workers as Info[];
    primary.proc.kill('SIGINT');
    expect(await primary.exited).toEqual({ code: 130, signal: null });
    expect(readFileSync(path.join(ops, 'exit-hook'), 'utf8')).toBe('130');
    for (const w of workers) expect(isAlive(w.pid)).toBe(false);
  });
});

describe('LOG_CLUSTER_STATS', () => {
  it('prints a one-line summary on the interval; its timer keeps nobody alive: the primary exits by itself once closed', async () => {
    const primary = forkPrimary({
      args: ['--workers', '2'],
      env: { LOG_CLUSTER_STATS: '200' },
      options: { health: { intervalMs: 100 } },
    });
    const workers = (await primary.next('started')).workers as Info[];
    const line =
      /^\[clusterbus\] workers 2 · active 2 · healthy 2 · restarts 0 · rss [\d.]+ MiB · worst event-loop p99 [\d.]+ ms \(slot [01]\)$/m;
    await until(
      () => primary.stdout(),
      (s) => line.test(s),
      'a stats line with both workers reported',
      15_000,
    );
    await closeAndCheck(
      primary,
      workers.map((w) => w.pid),
    );
  });
});

describe('LOG_CLUSTER_STATS with logs: json', () => {
  it('prints the summary as JSON, null for what no report told, restarts counted', async () => {
    const primary = forkPrimary({
      args: ['--workers', '2'],
      env: { LOG_CLUSTER_STATS: '150' },
      options: { logs: 'json' },
    });
    await primary.next('started');
    const stats = () =>
      primary
        .stdout()
        .split('\n')
        .filter((l) => l.includes('"cluster-stats"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const first = await until(
      () => stats()[0],
      (s) => s !== undefined,
      'a stats line',
    );
    expect(first).toEqual({
      time: expect.any(String),
      type: 'cluster-stats',
      workers: 2,
      active: 2,
      healthy: 2, // health: false: every active worker
      restarts: 0,
      rssBytes: null,
      worstEventLoopP99: null,
    });
    const restarted = await primary.command({ cmd: 'restart' });
    expect(restarted.ok).toBe(true);
    await until(
      () => stats().at(-1),
      (s) => s?.restarts === 2 && s.active === 2,
      'a stats line after the rolling restart',
    );
    const workers = (await primary.command({ cmd: 'workers' })).value as Info[];
    await closeAndCheck(
      primary,
      workers.map((w) => w.pid),
    );
  });
});

describe('bus.peers()', () => {
  it("lists the cluster's ready workers, the caller included, in a worker and on app.bus", async () => {
    const primary = forkPrimary({ args: ['--workers', '2'] });
    const workers = (await primary.next('started')).workers as Info[];
    const expected = workers.map((w) => ({ workerId: w.id, slot: w.slot, pid: w.pid }));
    expect((await primary.command({ cmd: 'peers' })).value).toEqual(expected);
    const fromWorker = await primary.command({ cmd: 'worker-peers', slot: 1 });
    expect(fromWorker.value).toEqual({ self: workers[1]!.id, peers: expected });
    // A worker that is added shows once it is ready.
    const grown = await primary.command({ cmd: 'scale', n: 3 });
    const all = (grown.value as { workers: Info[] }).workers;
    const fromSlot0 = await primary.command({ cmd: 'worker-peers', slot: 0 });
    expect((fromSlot0.value as { peers: unknown[] }).peers).toEqual(
      all.map((w) => ({ workerId: w.id, slot: w.slot, pid: w.pid })),
    );
    await closeAndCheck(
      primary,
      all.map((w) => w.pid),
    );
  });
});
