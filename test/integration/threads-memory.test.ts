/**
 * 200 thread replacements leave the caller's memory flat: run in a child process with
 * `--expose-gc` (fixtures/threads/replacements-probe.ts), which measures its heap after gc before
 * and after the replacements. A leak of what one thread's life holds (its peer, link and Worker:
 * about 12 KB, measured by retaining them on purpose) would grow it by 2.5 MB over 200; measured
 * without one: +0.3 MB over 200, and bare `new Worker` cycles vary by ±0.15 MB.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { fixturePath } from './fixtures/threads/boot.js';

interface ProbeResult {
  readonly replacements: number;
  readonly crashReports: number;
  readonly heapBefore: number;
  readonly heapAfter: number;
  readonly elapsedMs: number;
  readonly running: number;
}

function runProbe(replacements: number): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', fixturePath('replacements-probe.ts')],
      {
        env: { ...process.env, REPLACEMENTS: String(replacements) },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`probe exited with ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as ProbeResult);
    });
  });
}

describe('thread replacements', () => {
  it('200 replacements (each thread exits mid-call) keep the caller’s heap flat', async () => {
    const result = await runProbe(200);
    expect(result.replacements).toBe(200);
    expect(result.crashReports).toBe(200);
    expect(result.running).toBe(0);
    expect(result.heapAfter - result.heapBefore).toBeLessThan(1.5 * 1024 * 1024);
  }, 480_000);
});
