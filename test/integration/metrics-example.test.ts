/** Runs examples/metrics-server.ts as a user would, and reads the metrics it served itself. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { families, samples, sampleValue } from '../prometheus.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('examples/metrics-server.ts', () => {
  it('serves GET /metrics with node:http: the bus metrics by slot and the workers’ counter summed; exits 0', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'examples/metrics-server.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    const [head, ...body] = run.stdout.split(/^GET \/metrics: /m);
    expect(head).toMatch(/^metrics on http:\/\/127\.0\.0\.1:\d+\/metrics$/m);
    const [status, ...text] = body.join('').split('\n');
    expect(status).toBe('200 text/plain; version=0.0.4; charset=utf-8');
    const parsed = families(text.join('\n'));
    expect(samples(parsed, 'app_jobs_total')).toEqual([{ labels: {}, value: 10 }]);
    expect(
      sampleValue(parsed, 'clusterbus_rpc_calls_total', {
        slot: 'primary',
        method: 'work',
        code: 'OK',
      }),
    ).toBe(10);
    const served = samples(parsed, 'clusterbus_rpc_served_total');
    expect(served.map((s) => s.labels.slot).sort()).toEqual(['0', '1']);
    expect(served.reduce((n, s) => n + s.value, 0)).toBe(10);
  });
});
