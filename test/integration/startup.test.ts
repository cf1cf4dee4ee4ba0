/**
 * startCluster's failures, explained at once: workers that die before they are ready (a throw
 * at import, a missing module, a syntax error, EADDRINUSE) fail the start with STARTUP_FAILED
 * in seconds, with the exit code and the end of their stderr; a start that times out says how
 * far each worker got; PM2's cluster mode is refused with what to do instead.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import cluster from 'node:cluster';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { BusError } from '../../src/index.js';
import {
  type App,
  expectNoProcessLeft,
  forkedPids,
  isAlive,
  NEVER_CONNECTS,
  rejection,
  start,
  stop,
  until,
} from './helpers.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

let app: App | undefined;
let child: ChildProcess | undefined;
let taken: net.Server;
let dir: string;

beforeAll(async () => {
  // Node's cluster adds its one process listener at the first setup: before any baseline.
  cluster.setupPrimary();
  taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, resolve));
  dir = mkdtempSync(join(tmpdir(), 'clusterbus-startup-'));
  // Not a fixture file of the repository: a file that does not parse would break the linter.
  writeFileSync(join(dir, 'syntax-error.mjs'), 'export const = 1;\n');
});
afterAll(async () => {
  await new Promise((resolve) => taken.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await stop(app);
  app = undefined;
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
  }
  child = undefined;
});

/** What this process holds that a start must not leave behind: listeners and timers. */
function held() {
  const listeners = (emitter: NodeJS.EventEmitter) =>
    Object.fromEntries(emitter.eventNames().map((n) => [String(n), emitter.listenerCount(n)]));
  return {
    process: listeners(process),
    cluster: listeners(cluster),
    timers: process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length,
  };
}

/** A fresh directory for the attempts of `exits-at-start.ts`. */
function attemptsDir(): string {
  return mkdtempSync(join(dir, 'attempts-'));
}

describe('a worker that dies before it is ready', () => {
  const port = () => String((taken.address() as net.AddressInfo).port);
  const cases = [
    {
      what: 'throws at import',
      exec: () => fixture('throws-at-import.ts'),
      says: 'Error: fixture: this worker throws at import',
    },
    {
      what: 'imports a module that is not installed',
      exec: () => fixture('imports-missing-module.ts'),
      says: "Cannot find package 'clusterbus-fixture-no-such-module'",
    },
    {
      what: 'has a syntax error',
      exec: () => join(dir, 'syntax-error.mjs'),
      says: 'SyntaxError',
    },
    {
      what: 'listens on a port in use (EADDRINUSE, after connecting)',
      exec: () => fixture('listens-on-taken-port.ts'),
      says: 'EADDRINUSE',
    },
  ];

  it.each(
    cases,
  )('fails startCluster with STARTUP_FAILED within 5 s with default options when it $what, forwarding its stderr and leaving nothing behind', async ({
    exec,
    says,
  }) => {
    const before = new Set(forkedPids());
    const heldBefore = held();
    // Recorded, not printed: the test's output stays readable.
    const written = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const t0 = performance.now();
    let error: BusError;
    let forwarded: string;
    try {
      error = await rejection(start({ exec: exec(), env: { PORT: port() } }));
    } finally {
      forwarded = written.mock.calls.map(([chunk]) => String(chunk)).join('');
      written.mockRestore();
    }
    const elapsedMs = performance.now() - t0;

    expect(error.code, error.message).toBe('STARTUP_FAILED');
    expect(elapsedMs).toBeLessThan(5_000); // measured: 0.4 to 2.1 s on the 2-core machine
    const data = error.data as { slot: number; exitCode: number; signal: null; stderr: string };
    expect(data).toMatchObject({ exitCode: 1, signal: null });
    expect([0, 1]).toContain(data.slot);
    expect(data.stderr).toContain(says);
    expect(data.stderr.split('\n').length).toBeLessThanOrEqual(20);
    expect(Buffer.byteLength(data.stderr)).toBeLessThanOrEqual(4_096);
    expect(error.message).toContain(`the worker in slot ${data.slot} exited before it was ready`);
    expect(error.message).toContain('twice in a row with the same cause (exit code 1');
    expect(error.message).toContain(says);
    expect(error.message).not.toContain('does the worker call connect()');

    // Each worker's stderr reached this process's stderr, chunk for chunk.
    expect(forwarded.split(says).length - 1).toBeGreaterThanOrEqual(2);

    // Two slots, each restarted at once after its first exit: 3 or 4 workers, all gone.
    const mine = forkedPids().filter((pid) => !before.has(pid));
    expect(mine.length).toBeGreaterThanOrEqual(3);
    expect(mine.length).toBeLessThanOrEqual(4);
    expect(mine.filter(isAlive)).toEqual([]);
    expectNoProcessLeft();
    const heldAfter = held();
    expect({ ...heldAfter, timers: 0 }).toEqual({ ...heldBefore, timers: 0 });
    expect(heldAfter.timers).toBeLessThanOrEqual(heldBefore.timers);
  });

  it('fails with STARTUP_FAILED at the first exit with restart: false', async () => {
    const before = forkedPids().length;
    const error = await rejection(
      start({ workers: 1, exec: fixture('throws-at-import.ts'), restart: false }),
    );
    expect(error.code).toBe('STARTUP_FAILED');
    expect(error.message).toContain('exited before it was ready (exit code 1');
    expect(error.message).toContain('restart is off');
    expect(forkedPids().length - before).toBe(1);
    expectNoProcessLeft();
  });

  it('says when the worker exited after its connect() was refused (another contract)', async () => {
    // The refusal is also printed as a BusWarning (nobody listens for errors here).
    const error = await rejection(
      start({
        workers: 1,
        exec: fixture('drift-worker.ts'),
        env: { DRIFT_OUT: join(dir, 'drift.jsonl') },
        restart: false,
      }),
    );
    expect(error.code).toBe('STARTUP_FAILED');
    expect(error.message).toContain(
      'exited before it was ready (exit code 3, after its connect() was refused (CONTRACT_MISMATCH',
    );
    expectNoProcessLeft();
  });

  it('tells a signal from an exit code: killed by SIGKILL twice in a row', async () => {
    const error = await rejection(
      start({
        workers: 1,
        exec: fixture('exits-at-start.ts'),
        env: { ATTEMPTS_DIR: attemptsDir(), EXIT_MODE: 'signal' },
      }),
    );
    expect(error.code).toBe('STARTUP_FAILED');
    expect(error.data).toMatchObject({ slot: 0, exitCode: null, signal: 'SIGKILL', stderr: '' });
    expect(error.message).toContain('twice in a row with the same cause (killed by SIGKILL)');
    expect(error.message).toContain('it wrote nothing to stderr');
    expectNoProcessLeft();
  });

  it.each([
    { mode: 'code', last: 'exit code 12: Error: fixture attempt 2 fails' },
    { mode: 'message', last: 'exit code 1: Error: fixture failure gamma' },
  ])('is not "the same cause" when the $mode differs each time: the restart limit ends the start, with STARTUP_FAILED', async ({
    mode,
    last,
  }) => {
    const before = forkedPids().length;
    const error = await rejection(
      start({
        workers: 1,
        exec: fixture('exits-at-start.ts'),
        env: { ATTEMPTS_DIR: attemptsDir(), EXIT_MODE: mode },
        maxRestarts: 2,
        restartBackoffMs: 10,
      }),
    );
    expect(error.code).toBe('STARTUP_FAILED');
    expect(error.message).toContain(
      'the workers in slot 0 kept exiting before they were ready (restart limit reached: 2 restarts within 60000 ms',
    );
    expect(error.message).toContain(`the last one: ${last}`);
    // The first worker and its two restarts: never the same cause twice in a row.
    expect(forkedPids().length - before).toBe(3);
    expectNoProcessLeft();
  });
});

describe('a start that times out says how far each worker got', () => {
  it('one that connected with manualReady and never called bus.ready(), one whose connect() was refused', async () => {
    // Time enough for both to start and say hello, even on a loaded machine. The refusal is
    // also printed as a BusWarning.
    const error = await rejection(
      start({ exec: fixture('connects-not-ready.ts'), readyTimeoutMs: 8_000 }),
    );
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toMatch(/^startCluster: 2 of 2 workers were not ready within 8000 ms: /);
    expect(error.message).toMatch(
      /worker \d*[13579] \(slot [01]\) connected with manualReady and never called bus\.ready\(\)/,
    );
    expect(error.message).toMatch(
      /worker \d*[02468] \(slot [01]\) called connect\(\) and was refused \(CONTRACT_MISMATCH/,
    );
    expect(error.message).not.toContain('does the worker call connect()');
    expectNoProcessLeft();
  });

  it('a worker that never called connect(): "does the worker call connect()?"', async () => {
    const error = await rejection(
      start({ workers: 1, exec: NEVER_CONNECTS, readyTimeoutMs: 1_500 }),
    );
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toMatch(
      /^startCluster: 1 of 1 workers were not ready within 1500 ms: worker \d+ \(slot 0\) is running but did not connect \(does the worker call connect\(\)\?\)$/,
    );
    expectNoProcessLeft();
  });
});

describe('worker output', () => {
  it("pipes each worker's stderr through the primary and leaves its stdout inherited", async () => {
    app = await start({ workers: 1, health: false });
    const workers = Object.values(cluster.workers ?? {});
    expect(workers).toHaveLength(1);
    expect(workers[0]!.process.stdout).toBeNull(); // inherited
    expect(workers[0]!.process.stderr).not.toBeNull(); // piped, forwarded
    // The setting is not left behind for a plain cluster.fork() elsewhere in the process.
    expect(cluster.settings.stdio).toBeUndefined();
  });
});

describe("PM2's cluster mode", () => {
  it('refuses connect() at once (well under 1 s) with INVALID_ARGUMENT saying to use fork mode', async () => {
    child = spawn(process.execPath, ['--import', 'tsx', fixture('pm2-cluster-primary.ts')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: Array<Record<string, { ok: boolean; code?: string; message?: string }>> = [];
    createInterface({ input: child.stdout! }).on('line', (line) => lines.push(JSON.parse(line)));
    await until(
      () => lines.length,
      (n) => n === 2,
      'both PM2-forked workers report',
      20_000,
    );
    for (const line of lines) {
      const connected = line.connect as {
        ok: boolean;
        code: string;
        message: string;
        elapsedMs: number;
      };
      expect(connected.ok, JSON.stringify(line)).toBe(false);
      expect(connected.code).toBe('INVALID_ARGUMENT');
      expect(connected.message).toContain("PM2's cluster mode");
      expect(connected.message).toContain(
        "clusterbus is its own cluster manager: run the app with PM2 in fork mode (exec_mode: 'fork', one instance)",
      );
      expect(connected.elapsedMs).toBeLessThan(1_000);
      expect(line.startCluster).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
      expect(line.startCluster!.message).toContain('PM2 in fork mode');
    }
  });

  it("connects under a clusterbus primary even with PM2's variables in the environment (fork mode passes them on)", async () => {
    app = await start({
      workers: 1,
      health: false,
      env: { exec_mode: 'cluster_mode', pm_id: '0', NODE_APP_INSTANCE: '0' },
    });
    expect(await app.bus.call('any', 'add', { a: 1, b: 2 })).toBe(3);
  });
});
