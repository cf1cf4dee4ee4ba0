/**
 * Runs the mesh demo (`npm run demo:mesh`, examples/mesh/demo.ts) end to end: three NATS servers,
 * three nodes under HTTP load, a config update, a node and a NATS server killed.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { NATS_SERVER } from './servers.js';

describe.skipIf(NATS_SERVER === undefined)('examples/mesh (npm run demo:mesh)', () => {
  it('serves every node with no failed request, the shared counter equal to the 2xx count, the config version on every worker; exits 0', async () => {
    const child = spawn('npm', ['run', '--silent', 'demo:mesh'], {
      env: { ...process.env, DEMO_SECONDS: '5' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    clearTimeout(timer);
    const line = out.split('\n').find((l) => l.startsWith('DEMO_RESULT '));
    expect(line, out).toBeDefined();
    const result = JSON.parse(line!.slice('DEMO_RESULT '.length)) as {
      checks: Record<string, boolean>;
      hits: number;
      ok2xx: number;
    };
    expect(result.checks).toEqual({
      noFailedRequest: true,
      hitsEqual2xx: true,
      configEverywhere: true,
      everyNodeServed: true,
    });
    expect(result.hits).toBe(result.ok2xx);
    expect(code).toBe(0);
  }, 180_000);
});
