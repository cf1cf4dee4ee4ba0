/** Runs examples/patterns-and-streams.ts as a user would, and checks what it prints. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('examples/patterns-and-streams.ts', () => {
  it('prints the events its pattern matched and the rows it streamed, and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/patterns-and-streams.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      err += c;
    });
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toBe(
      'the worker saw: cache.user {"key":"user:42"}, cache.session {"id":7}\n' +
        `streamed 10000 rows, id sum ${(9_999 * 10_000) / 2}\n`,
    );
    // Nothing of its process group is left (its workers may take a moment to be reaped).
    const gone = () => {
      try {
        process.kill(-child.pid!, 0);
        return false;
      } catch {
        return true;
      }
    };
    const deadline = Date.now() + 5_000;
    while (!gone() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (!gone()) process.kill(-child.pid!, 'SIGKILL');
    expect(gone()).toBe(true);
  });
});
