/** The health protocol over in-memory links: reports, checks, misses, memory, malformed input. */
import { afterEach, describe, expect, it } from 'vitest';
import { type WorkerBus, workerBus } from '../../src/connect.js';
import { healthHub } from '../../src/health/extension.js';
import { type HealthMonitor, resolveHealthOptions } from '../../src/health/hub.js';
import type { HealthReport, UnhealthyReason } from '../../src/health/types.js';
import { HealthChecks } from '../../src/health/worker.js';
import { type BusError, type Contract, defineContract } from '../../src/index.js';
import { type PrimaryBus, primaryBus } from '../../src/primary-bus.js';
import { Kind, MARKER } from '../../src/protocol/envelope.js';
import { type MemoryPair, memoryPair } from '../../src/transport/memory.js';
import { expectForbiddenBetweenWorkers, harnessPerTest, rawChannel } from './helpers.js';

const contract = defineContract({ methods: { ping: {} } });
const start = harnessPerTest(contract);

interface Rig {
  readonly primary: PrimaryBus<Contract>;
  readonly worker: WorkerBus<Contract>;
  /** The in-memory link between them (`b` is the worker's end). */
  readonly pair: MemoryPair;
  readonly monitor: HealthMonitor;
  readonly unhealthy: Array<{
    workerId: number;
    reason: UnhealthyReason;
    detail: string;
    at: number;
  }>;
  readonly reports: HealthReport[];
  readonly errors: BusError[];
}

let rig: Rig | undefined;
afterEach(async () => {
  if (rig === undefined) return;
  rig.monitor.stop();
  await rig.worker.close();
  await rig.primary.close();
  expect(rig.primary.pendingCount + rig.worker.pendingCount).toBe(0);
  rig = undefined;
});

async function setup(options: Parameters<typeof resolveHealthOptions>[0]): Promise<Rig> {
  let connected!: () => void;
  const ready = new Promise<void>((r) => (connected = r));
  const primary = primaryBus<Contract>(contract, {}, { connected: () => connected() });
  const pair = memoryPair();
  primary.attachLink(1, pair.a);
  const worker = workerBus<Contract>(contract, pair.b, 1, {}, () => {});
  await ready;
  const unhealthy: Rig['unhealthy'] = [];
  const reports: HealthReport[] = [];
  const errors: BusError[] = [];
  const monitor = primary.install(
    healthHub(resolveHealthOptions(options), {
      unhealthy: (workerId, reason, detail) =>
        unhealthy.push({ workerId, reason, detail, at: performance.now() }),
      report: (r) => reports.push(r),
      error: (e) => errors.push(e),
    }),
  );
  rig = { primary, worker, pair, monitor, unhealthy, reports, errors };
  return rig;
}

const until = async (check: () => boolean, ms = 2_000) => {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('HealthChecks', () => {
  it('refuses a bad check with INVALID_ARGUMENT', () => {
    const checks = new HealthChecks({
      workerId: 1,
      slot: () => 0,
      inFlight: () => 0,
      configVersion: () => 0,
    });
    checks.addCheck('a', () => {});
    for (const bad of [
      () => checks.addCheck('a', () => {}),
      () => checks.addCheck('', () => {}),
      () => checks.addCheck('b', 42 as never),
    ]) {
      expect(bad).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });

  it('reports every check: its value, its error, its timeout', async () => {
    const checks = new HealthChecks({
      workerId: 7,
      slot: () => 2,
      inFlight: () => 3,
      configVersion: () => 5,
    });
    checks.addCheck('value', async () => ({ n: 1 }));
    checks.addCheck('nothing', () => undefined);
    checks.addCheck('throws', () => {
      throw new Error('nope');
    });
    const remove = checks.addCheck('gone', () => {});
    remove();
    checks.addCheck('slow', () => new Promise((r) => setTimeout(r, 1_000)));
    checks.start();
    const report = await checks.report(30);
    checks.stop();
    expect(report).toMatchObject({
      workerId: 7,
      slot: 2,
      pid: process.pid,
      inFlightCalls: 3,
      configVersion: 5,
      healthy: false,
    });
    expect(Object.keys(report.checks).sort()).toEqual(['nothing', 'slow', 'throws', 'value']);
    expect(report.checks.value).toMatchObject({ ok: true, value: { n: 1 } });
    expect(report.checks.nothing).toEqual({ ok: true, durationMs: expect.any(Number) });
    expect(report.checks.throws).toMatchObject({ ok: false, error: 'nope' });
    expect(report.checks.slow).toMatchObject({ ok: false, error: 'timed out after 30 ms' });
    expect(report.checks.slow!.durationMs).toBeGreaterThanOrEqual(25);
  });
});

describe('event-loop delay', () => {
  const source = { workerId: 1, slot: () => 0, inFlight: () => 0, configVersion: () => 0 };
  const stall = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end) {}
  };

  it('records a stall that starts right after a report (reset() forgets the previous tick)', async () => {
    const checks = new HealthChecks(source);
    checks.start();
    await new Promise((r) => setTimeout(r, 30));
    await checks.report(10);
    stall(150);
    const after = await checks.report(10);
    checks.stop();
    expect(after.eventLoopDelayMs.max).toBeGreaterThanOrEqual(120);
  });

  it('records a stall that starts right after the first ping enables the histogram', async () => {
    const checks = new HealthChecks(source);
    checks.start();
    stall(150);
    const first = await checks.report(10);
    checks.stop();
    expect(first.eventLoopDelayMs.max).toBeGreaterThanOrEqual(120);
  });

  it('reports a calm loop as calm', async () => {
    const checks = new HealthChecks(source);
    checks.start();
    await new Promise((r) => setTimeout(r, 50));
    const calm = await checks.report(10);
    checks.stop();
    expect(calm.eventLoopDelayMs.p50).toBeLessThan(20);
    expect(calm.eventLoopUtilization).toBeLessThan(0.9);
  });
});

describe('HealthMonitor', () => {
  it('checks its options', () => {
    for (const bad of [{ intervalMs: 0 }, { misses: 0 }, { misses: 1.5 }, { maxMemoryBytes: -1 }]) {
      expect(() => resolveHealthOptions(bad)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
    expect(resolveHealthOptions()).toEqual({
      intervalMs: 5_000,
      misses: 3,
      maxMemoryBytes: undefined,
      memorySamples: 2,
      checkTimeoutMs: 2_500,
    });
  });

  it('pings a watched worker and keeps its latest report; pings are not pending calls', async () => {
    const { primary, worker, monitor, reports } = await setup({ intervalMs: 20 });
    monitor.watch(1);
    await until(() => reports.length >= 3);
    expect(reports.at(-1)).toMatchObject({ workerId: 1, pid: process.pid, healthy: true });
    expect(monitor.view(1)).toMatchObject({ misses: 0, overMemory: 0, report: reports.at(-1) });
    expect(primary.pendingCount + worker.pendingCount).toBe(0);
  });

  it('a report carries callDurationMs of the requests served since the previous one; null when none was', async () => {
    const set = await setup({ intervalMs: 50 });
    const { monitor, reports } = set;
    const worker = set.worker as unknown as WorkerBus<typeof contract>;
    const primary = set.primary as unknown as PrimaryBus<typeof contract>;
    worker.handle('ping', () => new Promise<void>((r) => setTimeout(r, 30)));
    monitor.watch(1);
    await until(() => reports.length >= 1);
    const seen = reports.length;
    await Promise.all([primary.call(1, 'ping'), primary.call(1, 'ping')]);
    // Both answers may fall either side of a report: count over the reports since.
    const timed = () => reports.slice(seen).filter((r) => r.callDurationMs !== null);
    await until(() => timed().reduce((n, r) => n + r.callDurationMs!.count, 0) >= 2);
    for (const { callDurationMs: d } of timed()) {
      expect(d!.p50).toBeGreaterThanOrEqual(25);
      expect(d!.p99).toBeGreaterThanOrEqual(d!.p50);
      expect(d!.max).toBeGreaterThanOrEqual(d!.p99);
      expect(d!.max).toBeLessThan(5_000);
    }
    expect(timed().reduce((n, r) => n + r.callDurationMs!.count, 0)).toBe(2);
    // Reset at each report: the next one, with nothing served, has none.
    const after = reports.indexOf(timed().at(-1)!) + 1;
    await until(() => reports.length > after);
    expect(reports[after]!.callDurationMs).toBeNull();
    // System calls (the pings) are not counted, so an idle worker reports null from the start.
    expect(reports[0]!.callDurationMs).toBeNull();
  });

  it('declares a silent worker unhealthy after `misses` pings, within interval × (misses + 1)', async () => {
    const INTERVAL = 30;
    const { pair, monitor, unhealthy } = await setup({ intervalMs: INTERVAL, misses: 2 });
    // The worker stops answering (as a blocked event loop would): nothing it writes leaves.
    pair.b.stalled = true;
    const t0 = performance.now();
    monitor.watch(1);
    await until(() => unhealthy.length > 0);
    expect(unhealthy).toEqual([
      {
        workerId: 1,
        reason: 'missed-pings',
        detail: 'missed 2 consecutive pings (interval 30 ms); never answered',
        at: expect.any(Number),
      },
    ]);
    // Pings at 0, 30, 60: the second miss is counted at 60 (+ timer lateness).
    expect(unhealthy[0]!.at - t0).toBeGreaterThanOrEqual(2 * INTERVAL - 2);
    expect(unhealthy[0]!.at - t0).toBeLessThan(INTERVAL * 3 + 50);
    // No longer watched: no second verdict.
    await new Promise((r) => setTimeout(r, 4 * INTERVAL));
    expect(unhealthy).toHaveLength(1);
    expect(monitor.view(1)).toMatchObject({ misses: 2 });
  });

  it('declares a worker over maxMemoryBytes unhealthy after memorySamples reports', async () => {
    const { monitor, unhealthy, reports } = await setup({
      intervalMs: 20,
      maxMemoryBytes: 1,
      memorySamples: 3,
    });
    monitor.watch(1);
    await until(() => unhealthy.length > 0);
    expect(reports).toHaveLength(3);
    expect(unhealthy[0]).toMatchObject({ reason: 'memory' });
    expect(unhealthy[0]!.detail).toMatch(/^rss [\d.]+ MiB over maxMemoryBytes 0\.0 MiB in 3/);
  });

  it('reports a malformed report as PROTOCOL and ignores it', async () => {
    const { worker, monitor, errors } = await setup({ intervalMs: 1_000 });
    monitor.watch(1);
    worker.systemSend('$health.report', { seq: 1, report: { rssBytes: 'lots' } });
    await until(() => errors.length > 0);
    expect(errors[0]!.code).toBe('PROTOCOL');
  });

  it('stops every timer on stop()', async () => {
    const { monitor, reports } = await setup({ intervalMs: 10 });
    monitor.watch(1);
    await until(() => reports.length >= 1);
    monitor.stop();
    expect(monitor.running).toBe(false);
    const seen = reports.length;
    await new Promise((r) => setTimeout(r, 60));
    expect(reports.length).toBeLessThanOrEqual(seen + 1); // at most the answer already in flight
    monitor.watch(1);
    await new Promise((r) => setTimeout(r, 30));
    expect(reports.length).toBeLessThanOrEqual(seen + 1);
  });
});

describe('the health extension on a memory harness', () => {
  it("refuses a worker's $health.ping routed to another worker with FORBIDDEN; its raw ping event reaches no worker", async () => {
    let monitor!: HealthMonitor;
    const reports: HealthReport[] = [];
    const h = await start(2, {
      install: (primary) => {
        monitor = primary.install(
          healthHub(resolveHealthOptions({ intervalMs: 10_000 }), {
            unhealthy: () => {},
            report: (r) => reports.push(r),
            error: () => {},
          }),
        );
      },
    });
    // The hub's own ping is answered, and every later report of worker 2 would be seen.
    monitor.watch(2);
    await until(() => reports.length === 1);
    expect(reports[0]).toMatchObject({ workerId: 2 });
    const ping = { seq: 1, checkTimeoutMs: 10 };
    await expectForbiddenBetweenWorkers(h, '$health.ping', ping);
    // A worker's system event goes to the hub alone, which does not answer pings.
    rawChannel(h.pairs[0]!).send({ [MARKER]: 1, k: Kind.event, m: '$health.ping', s: 1, p: ping });
    await new Promise((r) => setTimeout(r, 50));
    expect(reports).toHaveLength(1);
  });
});
