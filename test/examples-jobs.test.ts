/**
 * Runs the run-once job and rate limit examples as a user would (`node --import tsx <file>`,
 * from the repository's root) and checks what they print, that they exit 0 on their own, and
 * that no process outlives them.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  /** Processes still alive afterwards that carried this run's marker (killed by the check). */
  readonly leftovers: readonly number[];
}

/** Runs `file` to its end; after `timeoutMs` its whole process group is killed. */
function runExample(file: string, timeoutMs: number): Promise<Run> {
  const marker = `--example-run=${randomUUID()}`;
  const child = spawn(process.execPath, ['--import', 'tsx', file, marker], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise<Run>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut, leftovers: killLeftovers(marker) });
    });
  });
}

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

describe('examples: run-once jobs and adapters', () => {
  it('cron-singleton.ts: one worker ticks; killed, another takes over with a larger token; exits 0', async () => {
    const run = await runExample('examples/cron-singleton.ts', 60_000);
    expect(run.timedOut, run.stderr).toBe(false);
    expect(run.leftovers).toEqual([]);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const ticks = [...run.stdout.matchAll(/^tick by worker (\d+) \(fencing token (\d+)\)$/gm)].map(
      (m) => ({ worker: Number(m[1]), token: Number(m[2]) }),
    );
    expect(ticks.length).toBeGreaterThanOrEqual(6);
    const killed = Number(/^killing the leader, worker (\d+)$/m.exec(run.stdout)?.[1]);
    expect(ticks.slice(0, 3).every((t) => t.worker === killed)).toBe(true);
    expect(ticks.slice(3).every((t) => t.worker !== killed && t.token > ticks[0]!.token)).toBe(
      true,
    );
    expect(run.stdout).toMatch(/^taken over by another worker: true$/m);
  });

  it('rate-limit.ts: exactly 10 of 30 requests pass for the whole cluster of 4 workers; exits 0', async () => {
    const run = await runExample('examples/rate-limit.ts', 60_000);
    expect(run.timedOut, run.stderr).toBe(false);
    expect(run.leftovers).toEqual([]);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^200: 10, 429: 20$/m);
    expect(run.stdout).toMatch(/^the 200s came from [2-4] worker\(s\)$/m);
  });
});
