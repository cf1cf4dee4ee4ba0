/**
 * Runs the examples as a user would (`node --import tsx <file>`, from the repository's root) and
 * checks what they print, that they exit 0 on their own, and that no process outlives them.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  /** Processes still alive afterwards that carried this run's marker (killed by the check). */
  readonly leftovers: readonly number[];
}

interface Started {
  readonly pid: number;
  /** What it has printed so far. */
  stdout(): string;
  /** Settles once it has exited and every process holding its output has closed it. */
  readonly done: Promise<Run>;
}

/**
 * Starts `file` as a user would. After `timeoutMs` its whole process group is killed. Every
 * process of the run (workers inherit the primary's arguments) carries a unique marker argument,
 * so the ones left behind can be found afterwards.
 */
function startExample(
  file: string,
  timeoutMs: number,
  env: Readonly<Record<string, string>> = {},
): Started {
  const marker = `--example-run=${randomUUID()}`;
  const child = spawn(process.execPath, ['--import', 'tsx', file, marker], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so a timeout can kill the workers too
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = new Promise<Run>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup(child.pid!, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // 'close' comes after 'exit', once every process sharing the output pipes has exited.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, leftovers: killLeftovers(marker) });
    });
  });
  return { pid: child.pid!, stdout: () => stdout, done };
}

/** Runs `file` to its end. */
function runExample(
  file: string,
  timeoutMs: number,
  env: Readonly<Record<string, string>> = {},
): Promise<Run> {
  return startExample(file, timeoutMs, env).done;
}

/** Sends `signal` to every process of the group `pid` leads, as Ctrl+C does. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

/** Finds the processes whose command line carries `marker`, kills them, returns their pids. */
function killLeftovers(marker: string): number[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  const pids = ps
    .split('\n')
    .filter((line) => line.includes(marker))
    .map((line) => Number.parseInt(line.trim(), 10))
    .filter((pid) => pid !== process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The client's figures of one load phase, as the demo reports them. */
interface DemoLoad {
  responses: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  errorsByCode: Record<string, number>;
  endedBy: 'finish' | 'maxSeconds';
}

/** One phase's `hits` store counts against the client's 2xx responses, by route. */
interface DemoHits {
  routes: { route: string; store: number; client: number }[];
  store: number;
  client: number;
  autocannon2xx: number;
  equal: boolean;
  notAbove: boolean;
  failedIncrements: number;
}

/** The parts of the demo's `DEMO_RESULT {json}` line that the test checks. */
interface DemoResult {
  passed: boolean;
  checks: Record<string, boolean>;
  workers: number;
  phases: {
    config: {
      http: DemoLoad;
      hits: DemoHits;
      update: {
        from: { version: number; greeting: string };
        to: { version: number; greeting: string } | null;
        accepted: boolean;
        acks: { workerId: number; status: string }[];
      };
      probe: { worker: number; status: number; greeting: string; configVersion: number }[];
      liveWorkers: number[];
      everyWorkerOnNew: boolean;
    };
    restart: {
      http: DemoLoad;
      hits: DemoHits;
      durationMs: number | null;
      replaced: { slot: number; from: number; to: number }[];
      replacedAll: boolean;
      loadBeforeS: number;
      loadAfterS: number;
    };
    kill: {
      http: DemoLoad;
      hits: DemoHits;
      killed: { workerId: number; signal: string | null; planned: boolean } | null;
      replacement: { workerId: number; online: boolean; ready: boolean; answered: boolean } | null;
    };
  };
  invalidation: { allApplied: boolean; liveWorkers: number[]; appliedBy: number[] };
  /** What the management API reported at the end (GET /health, GET /stats). */
  management: {
    url: string;
    healthStatus: number;
    statsStatus: number;
    stats: {
      primary: {
        pid: number;
        requests: number | null;
        restarts: number;
        crashes: number;
        workersSpawned: number;
      };
      cluster: { workers: number; active: number; healthy: number };
      workers: {
        workerId: number;
        healthy: boolean;
        callsServed: number | null;
        requests: number | null;
      }[];
    };
  };
  workersNow: { workerId: number; config: { version: number; greeting: string } }[];
  workerPids: number[];
}

/** Resolves with the first match of `pattern` in `read()`, polling; rejects after `timeoutMs`. */
async function waitForOutput(read: () => string, pattern: RegExp, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(read());
    if (match !== null) return match;
    if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('examples', () => {
  it('quickstart.ts: calls, callAll, publish, worker-side calls; exits 0', async () => {
    const run = await runExample('examples/quickstart.ts', 30_000);
    expect(run.timedOut, run.stderr).toBe(false);
    expect(run.leftovers).toEqual([]);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const out = run.stdout;
    expect(out).toMatch(/^add on worker \d+: 3$/m);
    expect(out.match(/^worker \d+ is pid \d+$/gm)).toHaveLength(2);
    expect(out.match(/^worker \d+: invalidated user:42 \(published by primary\)$/gm)).toHaveLength(
      2,
    );
    expect(out).toMatch(/asked around: .*primary: \{ pid: \d+, workerId: 0 \}/);
    expect(out).toMatch(/peer: 30, any: 300/);
  }, 40_000);

  it('http-cluster/demo.ts: config update and rolling restart under load with no failed request, hits counted exactly, a SIGKILLed worker replaced; exits 0', async () => {
    const resultFile = path.join(os.tmpdir(), `clusterbus-demo-test-${randomUUID()}.json`);
    const run = await runExample('examples/http-cluster/demo.ts', 60_000, {
      DEMO_DURATION_S: '2',
      DEMO_RESULT_FILE: resultFile,
    });
    expect(run.timedOut, run.stdout + run.stderr).toBe(false);
    expect(run.leftovers).toEqual([]);
    expect(run.code, run.stdout + run.stderr).toBe(0);

    // The figures go to a file, not to the terminal; the last line says where.
    expect(run.stdout.split('\n').at(-2)).toBe(`DEMO_RESULT written to ${resultFile}`);
    expect(run.stdout).not.toMatch(/^DEMO_RESULT \{/m);
    const result = JSON.parse(readFileSync(resultFile, 'utf8')) as DemoResult;
    rmSync(resultFile);
    expect(result.passed, run.stdout).toBe(true);
    expect(Object.values(result.checks).every(Boolean)).toBe(true);
    const { config, restart, kill } = result.phases;

    // Every load phase ended gracefully: the answer to every request sent was awaited.
    for (const phase of [config, restart, kill]) {
      expect(phase.http.endedBy).toBe('finish');
      expect(phase.http.ok2xx).toBeGreaterThan(0);
    }

    // 1. A config update mid-load: not one failed request; every worker acknowledged it and,
    // asked over fresh connections afterwards, every live worker serves the new value.
    expect(config.http).toMatchObject({ non2xx: 0, errors: 0, timeouts: 0 });
    expect(config.http.ok2xx).toBe(config.http.responses);
    expect(config.update.from).toEqual({ version: 1, greeting: 'hello' });
    expect(config.update.to).toEqual({ version: 2, greeting: 'bonjour' });
    expect(config.update.accepted).toBe(true);
    expect(config.update.acks).toHaveLength(result.workers);
    for (const ack of config.update.acks) expect(ack.status).toBe('accepted');
    expect(config.everyWorkerOnNew).toBe(true);
    expect([...new Set(config.probe.map((p) => p.worker))].sort()).toEqual(
      [...config.liveWorkers].sort(),
    );
    for (const answer of config.probe) {
      expect(answer).toMatchObject({ status: 200, greeting: 'bonjour', configVersion: 2 });
    }

    // 2. A rolling restart of every worker mid-load: not one failed request.
    expect(restart.http).toMatchObject({ non2xx: 0, errors: 0, timeouts: 0 });
    expect(restart.http.ok2xx).toBe(restart.http.responses);
    expect(restart.replacedAll).toBe(true);
    expect(restart.replaced).toHaveLength(result.workers);
    for (const r of restart.replaced) expect(r.to).not.toBe(r.from);
    expect(restart.durationMs).toBeGreaterThan(0);
    expect(restart.loadBeforeS).toBeGreaterThan(0);
    expect(restart.loadAfterS).toBeGreaterThan(0);

    // The hits store counts exactly the 2xx responses the client received, route by route, in
    // both phases where no process dies (the restart replaced every worker on the way).
    for (const hits of [config.hits, restart.hits]) {
      expect(hits.equal).toBe(true);
      expect(hits.failedIncrements).toBe(0);
      expect(hits.client).toBe(hits.autocannon2xx);
      expect(hits.store).toBe(hits.client);
      for (const r of hits.routes) expect(r.store, r.route).toBe(r.client);
      expect(hits.routes.map((r) => r.route)).toEqual(
        expect.arrayContaining(['/', '/cache', '/invalidate', '/peer', '/primary']),
      );
    }
    expect(config.hits.store).toBe(config.http.ok2xx);
    expect(restart.hits.store).toBe(restart.http.ok2xx);

    // 3. SIGKILL mid-load: the worker is replaced and the replacement serves. Requests in flight
    // on the killed worker may fail (this phase only); the store may miss the increments the
    // killed worker had not sent yet, but never counts a response no client received.
    expect(kill.killed).toMatchObject({ signal: 'SIGKILL', planned: false });
    expect(kill.replacement).toMatchObject({ online: true, ready: true, answered: true });
    expect(kill.hits.notAbove).toBe(true);
    for (const r of kill.hits.routes) expect(r.store, r.route).toBeLessThanOrEqual(r.client);

    // Every live worker, the replacement included, applied the last invalidation, and runs v2.
    const { invalidation } = result;
    expect(invalidation.allApplied).toBe(true);
    expect(invalidation.liveWorkers).toContain(kill.replacement!.workerId);
    expect([...invalidation.appliedBy].sort()).toEqual([...invalidation.liveWorkers].sort());
    for (const w of result.workersNow) {
      expect(w.config).toEqual({ version: 2, greeting: 'bonjour' });
    }
    expect(run.stdout).toContain('CHECKS ');

    // The management API was on: the dashboard's URL was printed, and the summary has /stats.
    const { management } = result;
    expect(run.stdout).toContain(`dashboard: ${management.url} (token `);
    expect(management.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(management.healthStatus).toBe(200);
    expect(management.statsStatus).toBe(200);
    const { primary, cluster } = management.stats;
    expect(cluster).toMatchObject({
      workers: result.workers,
      active: result.workers,
      healthy: result.workers,
    });
    expect(primary.crashes).toBeGreaterThanOrEqual(1); // the SIGKILL
    expect(primary.restarts).toBeGreaterThanOrEqual(result.workers + 1);
    expect(primary.workersSpawned).toBeGreaterThanOrEqual(2 * result.workers + 1);
    expect(primary.requests).toBeGreaterThan(0);
    for (const w of management.stats.workers) expect(w.callsServed).not.toBeNull();
    expect(run.stdout).toContain(
      `STATS      GET /stats at the end (${management.url}), GET /health 200 'ok':`,
    );
    expect(run.stdout).toMatch(
      new RegExp(
        `primary pid ${primary.pid}, up [\\d.]+ s: ${primary.requests} requests counted, ${primary.restarts} restarts, ${primary.crashes} crashes, ${primary.workersSpawned} workers spawned`,
      ),
    );
    // Every worker the demo forked (the replaced ones, the killed one, the replacement) has exited.
    expect(result.workerPids.length).toBeGreaterThanOrEqual(2 * result.workers + 1);
    expect(result.workerPids.filter(isAlive)).toEqual([]);
  }, 75_000);

  it('http-cluster/server.ts: serves every route, then closes cleanly on Ctrl+C', async () => {
    const server = startExample('examples/http-cluster/server.ts', 30_000, {
      PORT: '0',
      WORKERS: '2',
    });
    try {
      const [, port] = await waitForOutput(
        server.stdout,
        /workers on http:\/\/localhost:(\d+)/,
        20_000,
      );
      const get = async (path: string, method = 'GET') => {
        const res = await fetch(`http://localhost:${port}${path}`, { method });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      expect(await get('/')).toMatchObject({ status: 200 });
      const peer = await get('/peer');
      expect(peer).toMatchObject({ status: 200, body: { peer: { answered: expect.any(Number) } } });
      // The peer is another worker than the one that took the request.
      expect((peer.body.peer as { workerId: number }).workerId).not.toBe(peer.body.worker);
      expect(await get('/primary')).toMatchObject({
        status: 200,
        body: { primary: { workers: [1, 2], restarts: 0 } },
      });
      expect(await get('/cache?key=a')).toMatchObject({ status: 200 });
      expect(await get('/invalidate?key=a', 'POST')).toMatchObject({
        status: 202,
        body: { published: 'a' },
      });
      expect(await get('/cache')).toMatchObject({ status: 400 });
      expect(await get('/nope')).toMatchObject({ status: 404 });
    } finally {
      // Ctrl+C: SIGINT to the whole group. The workers leave it to the primary, which closes them.
      signalGroup(server.pid, 'SIGINT');
    }
    const run = await server.done;
    expect(run.timedOut, run.stdout + run.stderr).toBe(false);
    expect(run.leftovers).toEqual([]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/SIGINT: closing the cluster\nclosed\n/);
    // No worker was replaced: none of them died of the SIGINT.
    expect(run.stdout).not.toContain('replaced by');
  }, 40_000);
});
