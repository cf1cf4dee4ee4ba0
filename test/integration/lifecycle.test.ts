/**
 * The cluster's lifecycle on real processes: a crashed worker is replaced, close() settles every
 * pending call and leaves no process behind, and startCluster gives up (and kills) workers that
 * never connect.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BusError, startCluster, type WorkerExitEvent } from '../../src/index.js';
import { contract } from './fixtures/contract.js';
import {
  type App,
  CRASHES,
  expectNoProcessLeft,
  forkedPids,
  isAlive,
  NEVER_CONNECTS,
  nextEvent,
  pidOf,
  record,
  rejection,
  start,
  stop,
  until,
  within,
  workerIds,
} from './helpers.js';

let app: App | undefined;

afterEach(async () => {
  await stop(app);
  app = undefined;
});

describe('a crashed worker', () => {
  it('is replaced: exit (planned false, replacedBy), then online and connected for the new one', async () => {
    const running = await start({ workers: 2 });
    app = running;
    const [w1, w2] = workerIds(running) as [number, number];
    const victimPid = pidOf(running, w1);
    const forks = record(running, 'worker:fork');
    const online = record(running, 'worker:online');
    const connected = record(running, 'worker:connected');
    const exited = nextEvent(running, 'worker:exit', (e) => e.workerId === w1);

    process.kill(victimPid, 'SIGKILL');
    const exit = await exited;
    expect(exit).toMatchObject({
      workerId: w1,
      pid: victimPid,
      code: null,
      signal: 'SIGKILL',
      planned: false,
    });
    const replacement = exit.replacedBy;
    expect(replacement).toBeTypeOf('number');
    if (replacement === undefined) return;
    expect(replacement).not.toBe(w1);
    expect(replacement).not.toBe(w2);
    expect(forks).toEqual([expect.objectContaining({ workerId: replacement })]);

    const ready = await until(
      () => connected.filter((e) => e.workerId === replacement),
      (events) => events.length > 0,
      'the replacement connects',
      20_000,
    );
    const up = online.filter((e) => e.workerId === replacement);
    expect(up).toHaveLength(1);
    expect(ready).toHaveLength(1);
    expect(up[0]!.pid).toBe(ready[0]!.pid);
    expect(up[0]!.pid).not.toBe(victimPid);
    expect(isAlive(victimPid)).toBe(false);

    // The replacement is a full member: listed, connected, callable, reached by callAll.
    const listed = running.workers().map(({ id, pid, connected }) => ({ id, pid, connected }));
    expect(listed.sort((a, b) => a.id - b.id)).toEqual([
      { id: w2, pid: pidOf(running, w2), connected: true },
      { id: replacement, pid: up[0]!.pid, connected: true },
    ]);
    expect(await running.bus.call(replacement, 'whoami')).toEqual({
      workerId: replacement,
      pid: up[0]!.pid,
    });
    const all = await running.bus.callAll('whoami');
    expect(all.map((r) => r.workerId)).toEqual([w2, replacement]);
    expect((await rejection(running.bus.call(w1, 'whoami'))).code).toBe('NO_TARGET');
  });

  it('is replaced when it exits on its own (die), and the replacement works', async () => {
    const running = await start({ workers: 1 });
    app = running;
    const [w1] = workerIds(running) as [number];
    const exited = nextEvent(running, 'worker:exit', (e) => e.workerId === w1);
    await running.bus.call(w1, 'die');
    const exit = await exited;
    expect(exit.planned).toBe(false);
    const replacement = exit.replacedBy;
    if (replacement === undefined) throw new Error('no replacement');
    await nextEvent(running, 'worker:connected', (e) => e.workerId === replacement);
    expect(await running.bus.call('any', 'add', { a: 2, b: 2 })).toBe(4);
  });

  it('is not replaced with restart: false', async () => {
    const running = await start({ workers: 2, restart: false });
    app = running;
    const [w1, w2] = workerIds(running) as [number, number];
    const forks = record(running, 'worker:fork');
    const exited = nextEvent(running, 'worker:exit', (e) => e.workerId === w1);
    process.kill(pidOf(running, w1), 'SIGKILL');
    expect(await exited).toMatchObject({ planned: false, replacedBy: undefined });
    expect(forks).toEqual([]);
    expect(workerIds(running)).toEqual([w2]);
  });
});

describe('restart intensity', () => {
  it('stops replacing after maxRestarts within the window and emits worker:restart-limit', async () => {
    const running = await start({ workers: 1, maxRestarts: 1, restartWindowMs: 60_000 });
    app = running;
    const limits = record(running, 'worker:restart-limit');
    const [w1] = workerIds(running) as [number];
    const firstExit = nextEvent(running, 'worker:exit', (e) => e.workerId === w1);
    process.kill(pidOf(running, w1), 'SIGKILL');
    const replacement = (await firstExit).replacedBy;
    if (replacement === undefined) throw new Error('the first crash should be replaced');
    await nextEvent(running, 'worker:connected', (e) => e.workerId === replacement);
    expect(limits).toEqual([]);

    const secondExit = nextEvent(running, 'worker:exit', (e) => e.workerId === replacement);
    process.kill(pidOf(running, replacement), 'SIGKILL');
    expect(await secondExit).toMatchObject({ planned: false, replacedBy: undefined });
    expect(limits).toEqual([expect.objectContaining({ restarts: 1, windowMs: 60_000 })]);
    expect(running.workers()).toEqual([]);
    expect((await rejection(running.bus.call('any', 'whoami'))).code).toBe('NO_TARGET');
  });
});

describe('close()', () => {
  it('settles a pending call, stops every worker (planned exits), and leaves nothing behind', async () => {
    const running = await start({ workers: 2 });
    app = running;
    const [w1, w2] = workerIds(running) as [number, number];
    const pids = [pidOf(running, w1), pidOf(running, w2)];
    const exits = record(running, 'worker:exit');
    let closedEvent = false;
    running.on('close', () => {
      closedEvent = true;
    });
    const pending = rejection(running.bus.call(w1, 'hang', undefined, { timeoutMs: 25_000 }));
    await until(
      async () => (await running.bus.call(w1, 'started')).hang ?? 0,
      (n) => n > 0,
      "w1 runs 'hang'",
    );

    const t0 = performance.now();
    await within(running.close({ timeoutMs: 2_000 }), 15_000, 'close()');
    const error = await within(pending, 1_000, 'the pending call');
    expect(performance.now() - t0).toBeLessThan(15_000);
    expect(['TARGET_EXITED', 'CLOSED']).toContain(error.code);

    expect(running.bus.pendingCount).toBe(0);
    expect(closedEvent).toBe(true);
    expect(running.bus.isClosed).toBe(true);
    await within(running.bus.closed, 1_000, 'bus.closed');
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expectNoProcessLeft();
    expect(
      exits
        .map((e: WorkerExitEvent) => [e.workerId, e.planned, e.replacedBy])
        .sort((a, b) => Number(a[0]) - Number(b[0])),
    ).toEqual([
      [w1, true, undefined],
      [w2, true, undefined],
    ]);
    expect(running.workers()).toEqual([]);
  });

  it('rejects every later call, callAll and publish with CLOSED, and is idempotent', async () => {
    const running = await start({ workers: 1 });
    app = running;
    const [w1] = workerIds(running) as [number];
    const first = running.close();
    const second = running.close();
    await Promise.all([first, second]);
    await running.close();
    expect((await rejection(running.bus.call(w1, 'add', { a: 1, b: 1 }))).code).toBe('CLOSED');
    expect((await rejection(running.bus.call('primary', 'primaryOnly', { n: 1 }))).code).toBe(
      'CLOSED',
    );
    expect((await rejection(running.bus.callAll('whoami'))).code).toBe('CLOSED');
    expect(() => running.bus.publish('cache.invalidate', { key: 'k' })).toThrow(
      expect.objectContaining({ code: 'CLOSED' }),
    );
  });

  it("settles a worker -> primary call in flight and aborts the primary handler's signal", async () => {
    const running = await start({ workers: 2 });
    app = running;
    const [w1] = workerIds(running) as [number];
    let started = 0;
    let aborted: unknown;
    running.bus.handle('primaryOnly', (_input, { signal }) => {
      started++;
      return new Promise((resolve) => {
        signal.addEventListener('abort', () => {
          aborted = signal.reason;
          resolve({ n: -1, caller: 'primary' });
        });
      });
    });
    const asking = rejection(running.bus.call(w1, 'askPrimary', { n: 1 }, { timeoutMs: 25_000 }));
    await until(
      () => started,
      (n) => n > 0,
      "the primary's handler starts",
    );
    await within(running.close({ timeoutMs: 2_000 }), 15_000, 'close()');
    expect(['TARGET_EXITED', 'CLOSED']).toContain((await within(asking, 1_000, 'the call')).code);
    expect(aborted).toBeInstanceOf(BusError);
    expect(running.bus.pendingCount).toBe(0);
  });
});

describe('startCluster', () => {
  it('rejects with TIMEOUT when the workers never connect, and kills them', async () => {
    const before = new Set(forkedPids());
    const t0 = performance.now();
    const error = await rejection(
      startCluster({
        contract,
        workers: 2,
        exec: NEVER_CONNECTS,
        execArgv: ['--import', 'tsx'],
        readyTimeoutMs: 1_000,
      }),
    );
    const elapsed = performance.now() - t0;
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toContain('did not connect');
    expect(error.message).toContain('(does the worker call connect()?)');
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(10_000);
    const mine = forkedPids().filter((pid) => !before.has(pid));
    expect(mine).toHaveLength(2);
    // The fixture ignores the disconnect (an interval keeps it alive): only a kill ends it.
    expect(mine.filter(isAlive)).toEqual([]);
    expectNoProcessLeft();
  });

  it('rejects with STARTUP_FAILED when the workers keep crashing the same way before they connect', async () => {
    const before = new Set(forkedPids());
    const error = await rejection(
      startCluster({
        contract,
        workers: 1,
        exec: CRASHES,
        execArgv: ['--import', 'tsx'],
        maxRestarts: 2,
        readyTimeoutMs: 20_000,
      }),
    );
    expect(error.code).toBe('STARTUP_FAILED');
    expect(error.message).toContain('twice in a row with the same cause (exit code 1)');
    expect(error.data).toMatchObject({ slot: 0, exitCode: 1, signal: null });
    // The first worker and one replacement: the second exit with the same cause ends the start
    // (the restart limit, a third fork, is not waited for).
    const mine = forkedPids().filter((pid) => !before.has(pid));
    expect(mine).toHaveLength(2);
    expectNoProcessLeft();
  });

  it('rejects bad options with INVALID_ARGUMENT, forking nothing', async () => {
    const before = forkedPids().length;
    for (const workers of [0, -1, 1.5]) {
      const error = await rejection(
        startCluster({ contract, workers, exec: NEVER_CONNECTS, execArgv: ['--import', 'tsx'] }),
      );
      expect(error.code).toBe('INVALID_ARGUMENT');
    }
    expect(forkedPids()).toHaveLength(before);
  });
});
