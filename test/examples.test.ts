/**
 * Runs the examples as a user would (`node --import tsx <file>`, from the repository's root) and
 * checks what they print, that they exit 0 on their own, and that no process outlives them.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
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

/** The parts of the demo's `DEMO_RESULT {json}` line that the test checks. */
interface DemoResult {
  passed: boolean;
  served: number;
  responses: number;
  killed: { workerId: number; signal: string | null; planned: boolean } | null;
  replacement: { workerId: number; online: boolean; connected: boolean; served: number } | null;
  invalidation: { allApplied: boolean; liveWorkers: number[]; appliedBy: number[] };
  perWorker: { workerId: number; counted: number | null }[];
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

  it('http-cluster/demo.ts: load, a worker killed and replaced, invalidation everywhere; exits 0', async () => {
    const run = await runExample('examples/http-cluster/demo.ts', 60_000, {
      DEMO_DURATION_S: '3',
    });
    expect(run.timedOut, run.stdout + run.stderr).toBe(false);
    expect(run.leftovers).toEqual([]);
    expect(run.code, run.stdout + run.stderr).toBe(0);

    const line = run.stdout.split('\n').find((l) => l.startsWith('DEMO_RESULT '));
    expect(line, run.stdout).toBeDefined();
    const result = JSON.parse(line!.slice('DEMO_RESULT '.length)) as DemoResult;
    expect(result.passed).toBe(true);
    expect(result.served).toBeGreaterThan(0);
    expect(result.killed).toMatchObject({ signal: 'SIGKILL', planned: false });
    expect(result.replacement).toMatchObject({ online: true, connected: true });
    expect(result.replacement!.served).toBeGreaterThanOrEqual(0);
    // Every live worker, the replacement included, applied the last invalidation.
    const { invalidation } = result;
    expect(invalidation.allApplied).toBe(true);
    expect(invalidation.liveWorkers).toContain(result.replacement!.workerId);
    expect([...invalidation.appliedBy].sort()).toEqual([...invalidation.liveWorkers].sort());
    // Every live worker counted what it served; the killed one is gone.
    for (const w of result.perWorker) {
      if (w.workerId === result.killed!.workerId) expect(w.counted).toBeNull();
      else expect(w.counted).toBeGreaterThanOrEqual(0);
    }
    expect(run.stdout).toContain('CHECKS ');
    // Every worker the demo forked (the killed one, the replacement) has exited.
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
