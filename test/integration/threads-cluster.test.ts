/**
 * A thread pool inside a real cluster worker: the worker's health report shows the pool, and
 * the worker's drain closes it.
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterApp } from '../../src/index.js';
import { fixture, start, stop, until } from './fixtures/supervisor-helpers.js';
import { clusterContract } from './fixtures/threads/cluster-contract.js';

const WORKER = fixture('threads/cluster-worker.ts');
const MARKER = join(tmpdir(), `clusterbus-pool-${process.pid}.json`);

let app: ClusterApp<typeof clusterContract> | undefined;
afterEach(async () => {
  await stop(app);
  app = undefined;
  rmSync(MARKER, { force: true });
});

describe('a pool in a cluster worker', () => {
  it('shows in the worker’s health report, and the worker’s drain closes it', async () => {
    app = await start(clusterContract, WORKER, {
      workers: 1,
      health: { intervalMs: 200 },
      env: { POOL_MARKER: MARKER },
    });
    const answer = await app.bus.call('any', 'echo', { text: 'via the pool' });
    expect(answer.text).toBe('via the pool');
    const running = app;
    const report = await until(
      () => running.health().workers[0]?.report,
      (r) => (r?.pools?.[0]?.callsServed ?? 0) >= 1,
      'a health report with the pool',
    );
    expect(report?.pools).toEqual([
      expect.objectContaining({ name: 'echo', threads: 2, busy: 0, queued: 0, callsServed: 1 }),
    ]);
    expect(report?.pools?.[0]?.perThread).toHaveLength(2);
    await app.close({ timeoutMs: 10_000 });
    const seen = JSON.parse(readFileSync(MARKER, 'utf8')) as {
      draining: boolean;
      running: number;
      stats: { threads: number };
    };
    // Closed by the drain (the drain handler had run), every thread gone, before the worker exited.
    expect(seen).toEqual({
      draining: true,
      running: 0,
      stats: expect.objectContaining({ threads: 0 }),
    });
  });
});
