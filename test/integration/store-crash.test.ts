/**
 * Shared state survives a worker's crash: a SIGKILLed lock holder frees the lock for a waiter at
 * once, and the watches of a dead worker are dropped. Each test kills workers, so each gets a
 * fresh cluster, without replacements.
 */
import { afterEach, expect, it } from 'vitest';
import { type StoreApp, startStores, stopStores, until } from './fixtures/store-helpers.js';

let app: StoreApp | undefined;

afterEach(async () => {
  await stopStores(app);
  app = undefined;
});

it('frees the lock of a SIGKILLed holder for a waiter within 100 ms of the exit', async () => {
  const running = await startStores({ workers: 3, restart: false });
  app = running;
  const host = running.storeHost!;
  const [w1, w2] = running.workers().map((w) => w.id) as [number, number];
  const pid = running.workers().find((w) => w.id === w1)!.pid!;
  const held = await running.bus.call(w1, 'hold', { name: 'nightly-report', ttlMs: 60_000 });

  // Two waiters, FIFO: the primary first, then worker 2.
  let grantedAt = 0;
  const primaryWaiter = running.bus.lock('nightly-report', { waitMs: 10_000 }).then((lease) => {
    grantedAt = performance.now();
    return lease;
  });
  await until(
    () => host.stats().waiters,
    (n) => n === 1,
    'the primary waits',
  );
  const workerWaiter = running.bus.call(w2, 'take', { name: 'nightly-report', waitMs: 10_000 });
  await until(
    () => host.stats().waiters,
    (n) => n === 2,
    'worker 2 waits',
  );

  let exitAt = 0;
  let goneAt = 0;
  running.once('worker:exit', () => {
    exitAt = performance.now();
  });
  const offGone = running.bus.onWorkerGone(() => {
    goneAt ||= performance.now();
  });
  const killedAt = performance.now();
  process.kill(pid, 'SIGKILL');
  const lease = await primaryWaiter;
  await until(
    () => exitAt,
    (t) => t > 0,
    'the exit event',
  );
  offGone();
  const handOver = grantedAt - exitAt;
  console.info(
    `lock hand-over: ${handOver.toFixed(1)} ms after worker:exit, ${(grantedAt - goneAt).toFixed(1)} ms after the bus saw the worker gone, ${(grantedAt - killedAt).toFixed(1)} ms after SIGKILL`,
  );
  expect(handOver).toBeLessThan(100);
  expect(grantedAt - goneAt).toBeLessThan(100);
  expect(lease.token).toBeGreaterThan(held);

  // The next waiter (a worker) gets it once the primary releases, with a later token.
  expect(await lease.release()).toBe(true);
  expect(await workerWaiter).toBeGreaterThan(lease.token);
  expect(host.stats()).toMatchObject({ leases: 0, waiters: 0 });
});

it('cleans up the watches of a worker that died', async () => {
  const running = await startStores({ workers: 3, restart: false });
  app = running;
  const host = running.storeHost!;
  const [w1, w2, w3] = running.workers().map((w) => w.id) as [number, number, number];
  for (const id of [w1, w2, w3]) await running.bus.call(id, 'watch', { prefix: 'k' });
  expect(host.stats().watches).toBe(3);
  const pid = running.workers().find((w) => w.id === w2)!.pid!;
  const exited = new Promise<void>((resolve) => running.once('worker:exit', () => resolve()));
  process.kill(pid, 'SIGKILL');
  await exited;
  expect(host.stats().watches).toBe(2);
  expect([...host.stats().watchers].sort()).toEqual([w1, w3].sort());
  // Changes still reach the living watchers; nothing is sent to the dead one.
  const revision = await running.bus.store('hits').set('k1', 1);
  for (const id of [w1, w3]) {
    await until(
      () => running.bus.call(id, 'changes'),
      (cs) => cs.some((c) => c.revision === revision),
      `worker ${id} sees the change`,
    );
  }
});
