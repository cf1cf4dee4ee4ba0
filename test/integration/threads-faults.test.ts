/**
 * The thread pool when things go wrong, on real worker threads: cancellation (cooperative, and a
 * busy loop that must be terminated), a crash and an uncaught exception mid-call, running out of
 * memory under resourceLimits, and closing under load.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BusError } from '../../src/errors.js';
import { rejection, until } from './fixtures/common.js';
import { closePool, type FixturePool, startPool } from './threads-helpers.js';

let pool: FixturePool | undefined;
afterEach(async () => {
  await closePool(pool);
  pool = undefined;
});

/** Collects the pool's `error` events (crash reports). */
function errors(p: FixturePool): BusError[] {
  const seen: BusError[] = [];
  p.on('error', (e) => seen.push(e));
  return seen;
}

describe('cancellation', () => {
  it('aborts the handler’s signal cooperatively: the call rejects ABORTED, the thread stays', async () => {
    pool = await startPool({ threads: 1 });
    const threadId = (await pool.call(0, 'echo', { text: '' })).threadId;
    const controller = new AbortController();
    const call = pool.call(0, 'wait', { ms: 60_000 }, { signal: controller.signal });
    await until(
      () => pool!.stats().inFlight,
      (n) => n === 1,
      'the call in flight',
    );
    controller.abort();
    expect((await rejection(call)).code).toBe('ABORTED');
    // The handler saw its signal abort and returned: no replacement.
    await until(
      () => pool!.call(0, 'aborts'),
      (n) => n === 1,
      'the abort seen in the thread',
    );
    expect((await pool.call(0, 'echo', { text: '' })).threadId).toBe(threadId);
    expect(pool.stats().restarts).toBe(0);
  });

  it('times out a call and aborts the handler’s signal', async () => {
    pool = await startPool({ threads: 1 });
    const error = await rejection(pool.call(0, 'wait', { ms: 60_000 }, { timeoutMs: 100 }));
    expect(error.code).toBe('TIMEOUT');
    await until(
      () => pool!.call(0, 'aborts'),
      (n) => n === 1,
      'the abort seen in the thread',
    );
    expect(pool.stats().restarts).toBe(0);
  });

  it('keeps a thread whose sync handler answers after the call timed out (a late answer is its return)', async () => {
    pool = await startPool({ threads: 1, abortGraceMs: 5_000 });
    const before = (await pool.call(0, 'echo', { text: '' })).threadId;
    const error = await rejection(pool.call(0, 'burn', { ms: 600 }, { timeoutMs: 100 }));
    expect(error.code).toBe('TIMEOUT');
    // The thread takes no call until the burn has answered, then takes this one, well before
    // abortGraceMs: it was not replaced.
    const after = await pool.call(0, 'echo', { text: '' }, { timeoutMs: 4_000 });
    expect(after.threadId).toBe(before);
    expect(pool.stats().restarts).toBe(0);
  });

  it('terminates and replaces a busy-looping thread after abortGraceMs; the call rejects ABORTED', async () => {
    pool = await startPool({ threads: 2, abortGraceMs: 300 });
    const seen = errors(pool);
    const before = (await pool.call(0, 'echo', { text: '' })).threadId;
    const controller = new AbortController();
    const call = pool.call(0, 'spin', undefined, { signal: controller.signal });
    await until(
      () => pool!.stats().inFlight,
      (n) => n === 1,
      'the call in flight',
    );
    const abortedAt = performance.now();
    controller.abort();
    expect((await rejection(call)).code).toBe('ABORTED');
    // A call for thread 0 waits for the replacement instead of going to the stuck thread.
    const after = await pool.call(0, 'echo', { text: '' });
    expect(performance.now() - abortedAt).toBeGreaterThanOrEqual(250);
    expect(after.threadId).not.toBe(before);
    expect(pool.stats()).toMatchObject({ threads: 2, restarts: 1 });
    // Thread 1 was never touched, and a planned termination is not reported as a crash.
    expect(pool.stats().perThread[1]!.restarts).toBe(0);
    expect(seen).toEqual([]);
  });
});

describe('crashes', () => {
  it('rejects the calls of a thread that exits mid-call at once with TARGET_EXITED, and replaces it', async () => {
    pool = await startPool({ threads: 2 });
    const seen = errors(pool);
    const before = (await pool.call(0, 'echo', { text: '' })).threadId;
    const other = pool.call(0, 'wait', { ms: 60_000 });
    const error = await rejection(pool.call(0, 'crash'));
    expect(error.code).toBe('TARGET_EXITED');
    expect(error.message).toContain('exited with code 3');
    expect((await rejection(other)).code).toBe('TARGET_EXITED');
    const after = await pool.call(0, 'echo', { text: '' });
    expect(after.threadId).not.toBe(before);
    expect(seen.map((e) => e.code)).toEqual(['TARGET_EXITED']);
    expect(pool.stats().restarts).toBe(1);
  });

  it('rejects with TARGET_EXITED naming the uncaught exception that killed the thread', async () => {
    pool = await startPool({ threads: 1 });
    const seen = errors(pool);
    const error = await rejection(pool.call(0, 'throwLater'));
    expect(error.code).toBe('TARGET_EXITED');
    expect(error.message).toContain('thrown from a timer');
    expect((seen[0]?.cause as Error).message).toBe('thrown from a timer');
    expect(await pool.call(0, 'add', { a: 1, b: 1 })).toBe(2);
  });

  it('rejects with TARGET_EXITED when a thread runs out of memory under resourceLimits', async () => {
    pool = await startPool({ threads: 1, resourceLimits: { maxOldGenerationSizeMb: 32 } });
    errors(pool);
    const error = await rejection(pool.call(0, 'hog', undefined, { timeoutMs: 60_000 }));
    expect(error.code).toBe('TARGET_EXITED');
    expect(error.message).toContain('ERR_WORKER_OUT_OF_MEMORY');
    expect(await pool.call(0, 'add', { a: 1, b: 1 })).toBe(2);
  });

  it('replaces a crashing thread with backoff: at once after one crash, after initialMs after the second in a row', async () => {
    pool = await startPool({ threads: 1, restartBackoff: { initialMs: 3_000, maxMs: 3_000 } });
    errors(pool);
    const placed = () => pool!.stats().perThread[0]!.threadId;
    await rejection(pool.call(0, 'crash'));
    // The first replacement is started at once (it may take a while to connect).
    await until(placed, (id) => id !== undefined, 'the first replacement started', 2_000);
    await pool.call(0, 'add', { a: 1, b: 1 });
    await rejection(pool.call(0, 'crash'));
    const crashedAt = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The second crash in a row waits initialMs before its replacement is started.
    if (performance.now() - crashedAt < 2_500) expect(placed()).toBeUndefined();
    expect(await pool.call(0, 'add', { a: 1, b: 1 })).toBe(2);
    expect(performance.now() - crashedAt).toBeGreaterThanOrEqual(2_900);
    expect(pool.stats().restarts).toBe(2);
  });
});

describe('close', () => {
  it('under load: in-flight calls finish, new calls reject CLOSED, then every thread is gone', async () => {
    pool = await startPool({ threads: 2, maxInFlightPerThread: 4 });
    const calls = Array.from({ length: 40 }, (_, i) =>
      pool!.call('any', 'burn', { ms: 5 + (i % 3) }),
    );
    const closing = pool.close();
    const late = await rejection(pool.call('any', 'add', { a: 1, b: 1 }));
    expect(late.code).toBe('CLOSED');
    expect(() => pool!.publish('rules.changed', { version: 1 })).toThrow(/closed/);
    const settled = await Promise.allSettled(calls);
    expect(settled.every((s) => s.status === 'fulfilled')).toBe(true);
    await closing;
    expect(pool.stats().callsServed).toBe(40);
    expect(pool.runningThreads).toBe(0);
  });

  it('rejects what is left with CLOSED after closeTimeoutMs and terminates a stuck thread', async () => {
    pool = await startPool({ threads: 1, closeTimeoutMs: 300 });
    const stuck = rejection(pool.call(0, 'spin'));
    const behind = rejection(pool.call(0, 'add', { a: 1, b: 1 }));
    await until(
      () => pool!.stats().inFlight,
      (n) => n >= 1,
      'the call in flight',
    );
    const started = performance.now();
    await pool.close();
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect((await stuck).code).toBe('CLOSED');
    // In flight behind the spin on the same thread: it never ran.
    expect((await behind).code).toBe('CLOSED');
    expect(pool.runningThreads).toBe(0);
  });
});
