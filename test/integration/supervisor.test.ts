/**
 * Supervision on real workers: stable slots, crash restarts with backoff and restart intensity,
 * readiness, rolling restart, scaling, graceful close.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ClusterApp, StartClusterOptions } from '../../src/index.js';
import { contract } from './fixtures/supervisor-contract.js';
import {
  fixture,
  forkedPids,
  isAlive,
  once,
  record,
  rejection,
  start as startFixture,
  stop,
} from './fixtures/supervisor-helpers.js';

type C = typeof contract;
type App = ClusterApp<C>;
const WORKER = fixture('supervisor-worker.ts');

let app: App | undefined;
let dir: string;
let crashFlag: string;
let notReadyFlag: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clusterbus-supervisor-'));
  crashFlag = path.join(dir, 'crash');
  notReadyFlag = path.join(dir, 'not-ready');
});
afterEach(async () => {
  await stop(app);
  app = undefined;
  await rm(dir, { recursive: true, force: true });
});

function start(options: Partial<StartClusterOptions<C>> = {}): Promise<App> {
  return startFixture(contract, WORKER, {
    config: { message: 'hi' },
    health: false,
    ...options,
    env: { CRASH_FLAG: crashFlag, NOT_READY_FLAG: notReadyFlag, ...options.env },
  });
}

describe('slots', () => {
  it('gives each worker a stable slot, inherited by its replacement and usable as a target', async () => {
    app = await start();
    const [a, b] = app.workers();
    expect([a!.slot, b!.slot]).toEqual([0, 1]);
    expect(await app.bus.call({ slot: 0 }, 'whoami')).toMatchObject({ workerId: a!.id, slot: 0 });
    expect(await app.bus.call({ slot: 1 }, 'whoami')).toMatchObject({ workerId: b!.id, slot: 1 });
    // From a worker too: slot routing is the primary's.
    expect(await app.bus.call(a!.id, 'callSlot', { slot: 1 })).toMatchObject({ workerId: b!.id });

    const exit = once(app, 'worker:exit', (e) => e.workerId === b!.id);
    process.kill(b!.pid!, 'SIGKILL');
    const crashed = await exit;
    expect(crashed).toMatchObject({ slot: 1, planned: false });
    const replacement = crashed.replacedBy!;
    await once(app, 'worker:ready', (e) => e.workerId === replacement);
    expect(await app.bus.call({ slot: 1 }, 'whoami')).toMatchObject({
      workerId: replacement,
      slot: 1,
    });
    expect(await app.bus.call(a!.id, 'callSlot', { slot: 1 })).toMatchObject({
      workerId: replacement,
    });
    expect((await rejection(app.bus.call({ slot: 7 }, 'whoami'))).code).toBe('NO_TARGET');
    expect((await rejection(app.bus.call(a!.id, 'callSlot', { slot: 7 }))).code).toBe('REMOTE');
    expect((await rejection(app.bus.call({ slot: -1 }, 'whoami'))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('crash restarts', () => {
  it('backs off exponentially and stops a crash loop at maxRestarts for that slot', async () => {
    app = await start({
      workers: 2,
      maxRestarts: 3,
      restartWindowMs: 60_000,
      restartBackoffMs: 100,
      maxRestartBackoffMs: 150,
    });
    const running = app;
    const [victim, bystander] = running.workers();
    const forks = record(running, 'worker:fork');
    const exits = record(running, 'worker:exit');
    const backoffs = record(running, 'worker:backoff');
    const limited = once(running, 'worker:restart-limit');
    await writeFile(crashFlag, '');
    process.kill(victim!.pid!, 'SIGKILL');

    expect(await limited).toMatchObject({ slot: 0, restarts: 3, windowMs: 60_000 });
    // Restart 1 at once, 2 after 100 ms, 3 after 200 ms capped at 150 ms; the 4th crash stops it.
    expect(backoffs.map((b) => [b.slot, b.delayMs, b.restarts])).toEqual([
      [0, 100, 2],
      [0, 150, 3],
    ]);
    expect(forks.map((f) => f.slot)).toEqual([0, 0, 0]);
    expect(exits.map((e) => [e.slot, e.planned, e.code])).toEqual([
      [0, false, null],
      [0, false, 3],
      [0, false, 3],
      [0, false, 3],
    ]);
    for (const [i, b] of backoffs.entries()) {
      // The fork after a backoff waits at least its delay after the crash that caused it.
      expect(forks[i + 1]!.at - exits[i + 1]!.at).toBeGreaterThanOrEqual(b.delayMs - 5);
    }
    // No fork bomb: nothing more happens, and the other slot is untouched.
    await new Promise((r) => setTimeout(r, 500));
    expect(forks).toHaveLength(3);
    expect(running.workers().map((w) => [w.slot, w.id])).toEqual([[1, bystander!.id]]);
    expect((await rejection(running.bus.call({ slot: 0 }, 'whoami'))).code).toBe('NO_TARGET');

    // Fixed: a rolling restart starts the stopped slot again.
    await rm(crashFlag);
    const result = await running.restart();
    expect(result.replaced.map((r) => [r.slot, r.from])).toEqual([
      [0, undefined],
      [1, bystander!.id],
    ]);
    expect(running.workers().map((w) => [w.slot, w.state])).toEqual([
      [0, 'ready'],
      [1, 'ready'],
    ]);
  });

  it('rejects startCluster with STARTUP_FAILED when workers crash the same way before they are ready', async () => {
    await writeFile(crashFlag, '');
    const before = forkedPids().length;
    const error = await rejection(
      start({ workers: 1, maxRestarts: 2, restartBackoffMs: 10, readyTimeoutMs: 20_000 }),
    );
    expect(error.code).toBe('STARTUP_FAILED');
    expect(error.message).toContain('twice in a row with the same cause (exit code 3)');
    expect(error.data).toMatchObject({ slot: 0, exitCode: 3, signal: null });
    // The second exit with the same cause ends the start: no third fork for the restart limit.
    expect(forkedPids().length - before).toBe(2);
    expect(forkedPids().filter(isAlive)).toEqual([]);
  });
});

describe('readiness', () => {
  it('waits for bus.ready() when the worker asks for it', async () => {
    const t0 = performance.now();
    app = await start({ env: { READY_DELAY_MS: '400' } });
    // Each worker calls ready() 400 ms after its connect() resolved.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(400);
    expect(app.workers().every((w) => w.state === 'ready')).toBe(true);
    expect(await app.bus.call('any', 'whoami')).toMatchObject({ slot: expect.any(Number) });
  });

  it('rejects startCluster with TIMEOUT when a worker never becomes ready, and kills it', async () => {
    await writeFile(notReadyFlag, '');
    const before = new Set(forkedPids());
    const error = await rejection(start({ workers: 1, readyTimeoutMs: 800 }));
    expect(error.code).toBe('TIMEOUT');
    // How far it got in 800 ms depends on the machine's load: the message says which
    // (startup.test.ts checks each with time to spare).
    expect(error.message).toMatch(
      /worker \d+ \(slot 0\) (connected with manualReady and never called bus\.ready\(\)|is running but did not connect)/,
    );
    const mine = forkedPids().filter((p) => !before.has(p));
    expect(mine).toHaveLength(1);
    expect(mine.filter(isAlive)).toEqual([]);
  });
});

describe('rolling restart', () => {
  it('replaces every worker one slot at a time, new one ready before the old one drains', async () => {
    app = await start({ health: { intervalMs: 200 } });
    const running = app;
    const old = running.workers();
    const forks = record(running, 'worker:fork');
    const readies = record(running, 'worker:ready');
    const drains = record(running, 'worker:drain');
    const exits = record(running, 'worker:exit');

    // Traffic throughout: 'any' calls one after another, and a long call to slot 0's old worker.
    let stopTraffic = false;
    let calls = 0;
    const failures: unknown[] = [];
    const traffic = (async () => {
      while (!stopTraffic) {
        await running.bus.call('any', 'sleep', { ms: 5 }).then(
          () => calls++,
          (e: unknown) => failures.push(e),
        );
      }
    })();
    const long = running.bus.call(old[0]!.id, 'sleep', { ms: 400 });

    const result = await running.restart();
    stopTraffic = true;
    await traffic;
    expect(await long).toMatchObject({ workerId: old[0]!.id });
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(10);

    expect(result.replaced.map((r) => [r.slot, r.from])).toEqual([
      [0, old[0]!.id],
      [1, old[1]!.id],
    ]);
    const fresh = result.replaced.map((r) => r.to);
    expect(running.workers().map((w) => [w.slot, w.id, w.state])).toEqual([
      [0, fresh[0], 'ready'],
      [1, fresh[1], 'ready'],
    ]);
    // Slot by slot: fork new -> new ready -> old drains -> old exits -> next slot.
    for (const slot of [0, 1]) {
      const fork = forks.find((f) => f.workerId === fresh[slot])!;
      const ready = readies.find((r) => r.workerId === fresh[slot])!;
      const drain = drains.find((d) => d.workerId === old[slot]!.id)!;
      const exit = exits.find((e) => e.workerId === old[slot]!.id)!;
      expect(drain.reason).toBe('restart');
      expect(fork.at).toBeLessThan(ready.at);
      expect(ready.at).toBeLessThan(drain.at);
      expect(drain.at).toBeLessThan(exit.at);
      expect(exit).toMatchObject({ planned: true, code: 0, signal: null });
      if (slot === 0) {
        const nextFork = forks.find((f) => f.workerId === fresh[1])!;
        expect(exit.at).toBeLessThan(nextFork.at);
      }
    }
    for (const w of old) expect(isAlive(w.pid!)).toBe(false);
  });

  it('stops at a new worker that is not ready in time; the old one keeps serving', async () => {
    app = await start();
    const old = app.workers();
    await writeFile(notReadyFlag, '');
    const drains = record(app, 'worker:drain');
    const error = await rejection(app.restart({ readyTimeoutMs: 800, drainTimeoutMs: 1_000 }));
    expect(error.code).toBe('TIMEOUT');
    expect(drains).toEqual([expect.objectContaining({ slot: 0, reason: 'not-ready' })]);
    await once(app, 'worker:exit', (e) => e.workerId === drains[0]!.workerId);
    expect(app.workers().map((w) => w.id)).toEqual(old.map((w) => w.id));
    expect(await app.bus.call({ slot: 0 }, 'whoami')).toMatchObject({ workerId: old[0]!.id });
  });
});

describe('app.scale()', () => {
  it('grows and shrinks the cluster', async () => {
    app = await start({ workers: 1 });
    expect(await app.scale(3)).toEqual({ from: 1, to: 3 });
    expect(app.workers().map((w) => [w.slot, w.state])).toEqual([
      [0, 'ready'],
      [1, 'ready'],
      [2, 'ready'],
    ]);
    expect(await app.bus.call({ slot: 2 }, 'whoami')).toMatchObject({ slot: 2 });
    const drains = record(app, 'worker:drain');
    const exits = record(app, 'worker:exit');
    expect(await app.scale(1)).toEqual({ from: 3, to: 1 });
    expect(drains.map((d) => [d.slot, d.reason]).sort()).toEqual([
      [1, 'scale'],
      [2, 'scale'],
    ]);
    expect(exits.every((e) => e.planned)).toBe(true);
    expect(app.workers().map((w) => w.slot)).toEqual([0]);
    expect((await rejection(app.bus.call({ slot: 2 }, 'whoami'))).code).toBe('NO_TARGET');
    expect((await rejection(app.scale(0))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('draining', () => {
  it('sends no new any call to a draining worker, and lets its call in flight finish', async () => {
    app = await start();
    const [a, b] = app.workers();
    const long = app.bus.call(b!.id, 'sleep', { ms: 800 });
    const draining = once(app, 'worker:drain', (e) => e.workerId === b!.id);
    const scaling = app.scale(1);
    await draining;
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) seen.add((await app.bus.call('any', 'whoami')).workerId);
    expect([...seen]).toEqual([a!.id]);
    expect(app.workers().find((w) => w.id === b!.id)?.state).toBe('draining');
    expect(await long).toMatchObject({ workerId: b!.id });
    await scaling;
    expect(app.workers().map((w) => w.id)).toEqual([a!.id]);
  });
});

describe('app.close()', () => {
  it('lets in-flight calls finish, kills stragglers at the timeout, and leaves nothing', async () => {
    app = await start();
    const running = app;
    const [a, b] = running.workers();
    const kills = record(running, 'worker:kill');
    const exits = record(running, 'worker:exit');
    const finishing = running.bus.call(a!.id, 'sleep', { ms: 500 });
    const stuck = rejection(running.bus.call(b!.id, 'hang'));
    await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    await running.close({ timeoutMs: 1_500 });
    const elapsed = performance.now() - t0;
    expect(await finishing).toMatchObject({ workerId: a!.id });
    expect((await stuck).code).toBe('TARGET_EXITED');
    expect(elapsed).toBeGreaterThanOrEqual(1_400);
    expect(elapsed).toBeLessThan(3_000);
    expect(kills).toEqual([expect.objectContaining({ workerId: b!.id, reason: 'close-timeout' })]);
    expect(exits.find((e) => e.workerId === a!.id)).toMatchObject({ code: 0, planned: true });
    expect(exits.find((e) => e.workerId === b!.id)).toMatchObject({
      signal: 'SIGKILL',
      planned: true,
    });
    expect(running.bus.pendingCount).toBe(0);
    for (const w of [a, b]) expect(isAlive(w!.pid!)).toBe(false);
  });
});
