/**
 * A target that dies mid-call: the pending call rejects with TARGET_EXITED at once (well before
 * its timeout), for a primary -> worker call and for a worker -> worker one. Each test kills a
 * worker, so each gets a fresh cluster.
 */
import { afterEach, expect, it } from 'vitest';
import {
  type App,
  expectStackAt,
  lineHere,
  nextEvent,
  pidOf,
  rejection,
  start,
  stop,
  until,
  workerIds,
} from './helpers.js';

let app: App | undefined;

afterEach(async () => {
  await stop(app);
  app = undefined;
});

/** Waits until worker `id` has started `hang` at least once. */
async function hanging(running: App, id: number): Promise<void> {
  await until(
    async () => (await running.bus.call(id, 'started')).hang ?? 0,
    (n) => n > 0,
    `worker ${id} runs 'hang'`,
  );
}

it('rejects a primary -> worker call with TARGET_EXITED as soon as the target is killed', async () => {
  const running = await start({ workers: 2, restart: false });
  app = running;
  const [w1, w2] = workerIds(running) as [number, number];
  const pid = pidOf(running, w1);
  const exited = nextEvent(running, 'worker:exit', (e) => e.workerId === w1);
  let t0 = 0;
  const killer = (async () => {
    await hanging(running, w1);
    t0 = performance.now();
    process.kill(pid, 'SIGKILL');
  })();
  let error: unknown;
  const from = lineHere();
  try {
    await running.bus.call(w1, 'hang', undefined, { timeoutMs: 20_000 });
  } catch (e) {
    error = e;
  }
  const to = lineHere();
  const elapsed = performance.now() - t0;
  await killer;
  expect(error).toBeDefined();
  expect((error as { code?: string }).code).toBe('TARGET_EXITED');
  expect((error as Error).message).toContain(`worker ${w1}`);
  expect(elapsed).toBeLessThan(5_000);
  expectStackAt(error, 'exits.test.ts', from, to);
  expect(await exited).toMatchObject({
    workerId: w1,
    pid,
    code: null,
    signal: 'SIGKILL',
    planned: false,
    replacedBy: undefined,
  });
  expect(running.bus.pendingCount).toBe(0);
  // The dead worker is no target any more; the other one still answers.
  expect((await rejection(running.bus.call(w1, 'whoami'))).code).toBe('NO_TARGET');
  expect(await running.bus.call(w2, 'add', { a: 1, b: 1 })).toBe(2);
  expect(workerIds(running)).toEqual([w2]);
});

it('rejects every call pending on a killed worker, and only those', async () => {
  const running = await start({ workers: 2, restart: false });
  app = running;
  const [w1, w2] = workerIds(running) as [number, number];
  const onVictim = [1, 2, 3].map(() =>
    rejection(running.bus.call(w1, 'hang', undefined, { timeoutMs: 20_000 })),
  );
  const onSurvivor = running.bus.call(w2, 'sleep', { ms: 300 }, { timeoutMs: 20_000 });
  await hanging(running, w1);
  const t0 = performance.now();
  process.kill(pidOf(running, w1), 'SIGKILL');
  const errors = await Promise.all(onVictim);
  expect(performance.now() - t0).toBeLessThan(5_000);
  expect(errors.map((e) => e.code)).toEqual(['TARGET_EXITED', 'TARGET_EXITED', 'TARGET_EXITED']);
  expect(await onSurvivor).toEqual({ aborted: false });
  expect(running.bus.pendingCount).toBe(0);
});

it('rejects a worker -> worker call with TARGET_EXITED in the caller when the target dies', async () => {
  const running = await start({ workers: 2, restart: false });
  app = running;
  const [w1, w2] = workerIds(running) as [number, number];
  const relayed = running.bus.call(
    w1,
    'relay',
    { target: w2, method: 'hang', timeoutMs: 20_000 },
    { timeoutMs: 25_000 },
  );
  await hanging(running, w2);
  const t0 = performance.now();
  process.kill(pidOf(running, w2), 'SIGKILL');
  const outcome = await relayed;
  expect(performance.now() - t0).toBeLessThan(5_000);
  expect(outcome).toMatchObject({ ok: false, code: 'TARGET_EXITED' });
  expect(outcome.elapsedMs).toBeLessThan(20_000);
  if (!outcome.ok) expect(outcome.message).toContain(`worker ${w2}`);
  // Nothing left pending in the caller worker nor in the primary.
  expect(await running.bus.call(w1, 'pending')).toBe(0);
  expect(running.bus.pendingCount).toBe(0);
});

it('rejects a worker -> worker call with TARGET_EXITED when the target exits on its own', async () => {
  const running = await start({ workers: 2, restart: false });
  app = running;
  const [w1, w2] = workerIds(running) as [number, number];
  // w2's 'die' kills itself 5 ms after answering; w1 then has a 'hang' pending on it.
  const exited = nextEvent(running, 'worker:exit', (e) => e.workerId === w2);
  const relayed = running.bus.call(w1, 'relay', { target: w2, method: 'hang', timeoutMs: 20_000 });
  await hanging(running, w2);
  const t0 = performance.now();
  await running.bus.call(w2, 'die');
  const outcome = await relayed;
  expect(performance.now() - t0).toBeLessThan(5_000);
  expect(outcome).toMatchObject({ ok: false, code: 'TARGET_EXITED' });
  expect(await exited).toMatchObject({ workerId: w2, planned: false, signal: 'SIGKILL' });
});

it("aborts the target handler's ctx.signal when the calling worker dies mid-call", async () => {
  const running = await start({ workers: 2, restart: false });
  app = running;
  const [w1, w2] = workerIds(running) as [number, number];
  // w1 -> w2 'waitAbort', which only ends when its signal aborts.
  const relayed = running.bus.call(w1, 'relay', {
    target: w2,
    method: 'waitAbort',
    timeoutMs: 20_000,
  });
  const relayFailed = rejection(relayed);
  await until(
    async () => (await running.bus.call(w2, 'started')).waitAbort ?? 0,
    (n) => n > 0,
    "w2 runs 'waitAbort'",
  );
  const t0 = performance.now();
  process.kill(pidOf(running, w1), 'SIGKILL');
  expect((await relayFailed).code).toBe('TARGET_EXITED');
  const log = await until(
    () => running.bus.call(w2, 'abortLog'),
    (entries) => entries.length > 0,
    "w2's handler signal aborts",
  );
  expect(performance.now() - t0).toBeLessThan(5_000);
  expect(log).toHaveLength(1);
  expect(await running.bus.call(w2, 'pending')).toBe(0);
  expect(running.bus.pendingCount).toBe(0);
});

it('settles callAll with a TARGET_EXITED entry for a worker killed mid-gather', async () => {
  const running = await start({ workers: 2, restart: false });
  app = running;
  const [w1, w2] = workerIds(running) as [number, number];
  const gathering = running.bus.callAll('sleep', { ms: 1_500 }, { timeoutMs: 20_000 });
  const t0 = performance.now();
  process.kill(pidOf(running, w1), 'SIGKILL');
  const results = await gathering;
  expect(performance.now() - t0).toBeLessThan(10_000);
  expect(results).toHaveLength(2);
  const [first, second] = results as [(typeof results)[number], (typeof results)[number]];
  expect(first.workerId).toBe(w1);
  if (first.status !== 'rejected') throw new Error('the killed worker should have failed');
  expect(first.error.code).toBe('TARGET_EXITED');
  expect(second).toEqual({ workerId: w2, status: 'fulfilled', value: { aborted: false } });
});
