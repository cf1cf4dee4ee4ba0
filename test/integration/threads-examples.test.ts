/**
 * The thread-pool examples, run as a user would (`node --import tsx <file>` from the repository's
 * root): examples/threads/main.ts (a pool in a plain script) and the HTTP demo's CPU phase
 * (examples/http-cluster/cpu-demo.ts: the same route inline and through each worker's pool).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `file`; its whole process group is killed after `timeoutMs` (the run then fails). */
function run(file: string, timeoutMs: number, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL');
      reject(new Error(`${file} did not exit within ${timeoutMs} ms: ${stdout}${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('thread examples', () => {
  it('examples/threads/main.ts: validates, publishes to every thread, transfers, shows BAD_INPUT, exits 0', async () => {
    const r = await run('examples/threads/main.ts', 60_000);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('validated: 1 valid, invalid rows 1');
    expect(r.stdout).toContain('rules version per thread: 7, 7');
    expect(r.stdout).toContain('checksum 1024; the buffer moved: byteLength here is now 0');
    expect(r.stdout).toContain('BAD_INPUT: data');
    expect(r.stdout).toMatch(/stats: 2 threads, 0 busy, 0 queued, 5 calls served/);
    expect(r.stdout.trimEnd().endsWith('closed')).toBe(true);
  });

  it('http-cluster/cpu-demo.ts: the workers’ event-loop delay is lower with the pool than inline, exits 0', async () => {
    const r = await run('examples/http-cluster/cpu-demo.ts', 120_000, {
      CPU_DURATION_S: '2',
      WORKERS: '2',
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith('CPU_RESULT '));
    const result = JSON.parse(line!.slice('CPU_RESULT '.length)) as {
      passed: boolean;
      inline: { ok2xx: number; loopDelayP50Ms: number; workers: { inline: number }[] };
      pool: {
        ok2xx: number;
        loopDelayP50Ms: number;
        workers: { pooled: number; pool: { callsServed: number } }[];
      };
    };
    expect(result.passed, r.stdout).toBe(true);
    expect(result.pool.loopDelayP50Ms).toBeLessThan(result.inline.loopDelayP50Ms / 4);
    // Every batch of the pool run went through a pool, every batch of the inline run did not.
    const pooled = result.pool.workers.reduce((n, w) => n + w.pooled, 0);
    expect(pooled).toBe(result.pool.ok2xx);
    expect(result.pool.workers.reduce((n, w) => n + w.pool.callsServed, 0)).toBeGreaterThanOrEqual(
      pooled,
    );
    expect(result.inline.workers.reduce((n, w) => n + w.inline, 0)).toBe(result.inline.ok2xx);
  });
});
