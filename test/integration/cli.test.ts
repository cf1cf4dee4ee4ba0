/**
 * The `clusterbus` CLI, run as a user runs it (a child process: `node --import tsx
 * src/cli/main.ts …`) against a real cluster with the management API on.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StartClusterOptions } from '../../src/index.js';
import { families } from '../prometheus.js';
import type { contract } from './fixtures/management-contract.js';
import { once, stop } from './fixtures/supervisor-helpers.js';
import { type App, startManaged, TOKEN } from './management-helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI with `args`, the environment `env` on top of a clean one; kills it after 30 s. */
function cli(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('usage', () => {
  it('--help prints the usage and exits 0', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Usage: clusterbus <command>/);
    for (const word of [
      'status',
      'restart',
      'scale <N>',
      'metrics',
      '--url',
      '--token',
      '--no-wait',
    ]) {
      expect(run.stdout).toContain(word);
    }
  });

  it('usage errors exit 2 with a clear message', async () => {
    const cases: [string[], RegExp][] = [
      [[], /no command given/],
      [['frobnicate', '--url', 'http://127.0.0.1:1'], /unknown command 'frobnicate'/],
      [['status', '--bogus'], /Unknown option '--bogus'/],
      [['scale', '--url', 'http://127.0.0.1:1'], /scale takes 1 argument, got 0/],
      [['scale', 'two', '--url', 'http://127.0.0.1:1'], /positive integer, got 'two'/],
      [['scale', '0', '--url', 'http://127.0.0.1:1'], /positive integer, got '0'/],
      [['status'], /no API address: pass --url, or set CLUSTER_API_PORT/],
      [['status', '--url', 'ftp://x'], /--url must be an http:\/\/ URL/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(message);
    }
  });

  it('an API that cannot be reached: exit 2, saying so', async () => {
    const port = await closedPort();
    const run = await cli(['status'], { CLUSTER_API_PORT: String(port) });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`cannot reach the management API at http://127.0.0.1:${port}`);
    expect(run.stderr).toContain('ECONNREFUSED');
  });
});

describe('against a running cluster', () => {
  let app: App;
  let env: Record<string, string>;
  beforeAll(async () => {
    const bounded = { maxWorkers: 3 } as Partial<StartClusterOptions<typeof contract>>;
    app = await startManaged(bounded);
    env = { CLUSTER_API_PORT: String(app.management!.port), CLUSTER_API_TOKEN: TOKEN };
  });
  afterAll(() => stop(app));

  it('status prints a row per worker and exits 0 when healthy (env, or --url and --token)', async () => {
    for (const run of [
      await cli(['status'], env),
      await cli(['status', '--url', app.management!.url, '--token', TOKEN]),
    ]) {
      expect(run.code, run.stderr).toBe(0);
      const lines = run.stdout.split('\n');
      expect(lines[0]).toMatch(
        new RegExp(
          `^primary ${process.pid} · up \\S+.*2 workers \\(2 active, 2 healthy; min 1, max 3\\)`,
        ),
      );
      expect(run.stdout).toMatch(/│ slot │ id +│ pid +│ state +│ health +│/);
      for (const w of app.workers()) {
        expect(run.stdout).toMatch(
          new RegExp(`│ ${w.slot} +│ ${w.id} +│ ${w.pid} +│ ready +│ healthy `),
        );
      }
      expect(lines.at(-2)).toBe('health: ok');
    }
    const json = await cli(['status', '--json'], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).cluster).toMatchObject({ workers: 2, max: 3 });
  });

  it('a missing or wrong token: exit 1 with the 401 and a hint', async () => {
    for (const token of ['', 'wrong']) {
      const run = await cli(['status'], { ...env, CLUSTER_API_TOKEN: token });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/HTTP 401: (missing|wrong) bearer token/);
      expect(run.stderr).toContain('pass --token or set CLUSTER_API_TOKEN');
    }
  });

  it("metrics prints the cluster's Prometheus text", async () => {
    const run = await cli(['metrics'], env);
    expect(run.code, run.stderr).toBe(0);
    const parsed = families(run.stdout);
    expect(parsed.has('clusterbus_rpc_calls_total')).toBe(true);
  });

  it('restart waits for the rolling restart to finish; every worker is replaced', async () => {
    const before = app.workers().map((w) => w.id);
    const run = await cli(['restart', '--interval-ms', '100'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^rolling restart \S+ started \(2 workers\)$/m);
    expect(run.stdout).toMatch(
      /^rolling restart done in [\d.]+ s: slot 0: worker \d+ -> \d+, slot 1: worker \d+ -> \d+$/m,
    );
    const after = app.workers().map((w) => w.id);
    expect(after.some((id) => before.includes(id))).toBe(false);
    for (const [slot, id] of after.entries()) {
      expect(run.stdout).toContain(`slot ${slot}: worker ${before[slot]} -> ${id}`);
    }
  }, 45_000);

  it('restart --no-wait returns once accepted', async () => {
    const done = once(app, 'restart:done');
    const run = await cli(['restart', '--no-wait'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toMatch(/^rolling restart \S+ started \(2 workers\)$/);
    await done;
  }, 45_000);

  it('scale N: 409 above the maximum (count unchanged), bad N is a usage error, a good N waits until done', async () => {
    const refused = await cli(['scale', '4'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /HTTP 409: workers 4 is above the maximum of 3: the worker count is unchanged/,
    );
    expect(app.workers()).toHaveLength(2);
    const run = await cli(['scale', '3', '--interval-ms', '100'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('scaling from 2 to 3 workers');
    expect(run.stdout).toContain('scaled to 3 workers');
    expect(app.workers().filter((w) => w.state === 'ready')).toHaveLength(3);
    const down = await cli(['scale', '2', '--interval-ms', '100'], env);
    expect(down.code, down.stderr).toBe(0);
    expect(app.slots.slots).toHaveLength(2);
  }, 45_000);
});

describe('status of an unhealthy cluster', () => {
  let app: App | undefined;
  afterEach(async () => {
    await stop(app);
    app = undefined;
  });

  it('exits 1 and names the slot when a slot is stopped at its restart limit', async () => {
    app = await startManaged({ maxRestarts: 0 });
    const limit = once(app, 'worker:restart-limit');
    await app.bus.call({ slot: 1 }, 'die');
    await limit;
    const run = await cli(['status'], {
      CLUSTER_API_PORT: String(app.management!.port),
      CLUSTER_API_TOKEN: TOKEN,
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('health: UNHEALTHY');
    expect(run.stderr).toContain('slot 1: restart limit');
  });
});
