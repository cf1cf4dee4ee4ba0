/**
 * The shared utilities: the duration and count checks, `DeadlineTimer` (one timer for the
 * earliest of many deadlines, never early, re-armed past Node's 2^31 − 1 ms limit) and its two
 * users, `deadline()`, and the abort-aware `sleep()` (no timer or listener left behind).
 */
import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BusError } from '../../src/errors.js';
import { PendingCalls } from '../../src/protocol/pending.js';
import { ExpiryQueue } from '../../src/state/expiry.js';
import { checkCount } from '../../src/util/count.js';
import { checkDurationMs, DeadlineTimer, deadline, MAX_TIMER_MS } from '../../src/util/duration.js';
import { sleep } from '../../src/util/sleep.js';
import { rejection } from '../rejection.js';

/** A deadline Node's `setTimeout` alone would serve after 1 ms. */
const PAST_LIMIT_MS = 3e9;

function fakeTimers(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
}

afterEach(() => {
  // Leak check: whatever a test armed, it disarmed.
  if (vi.isFakeTimers()) expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** The BusError `fn` throws (synchronously: a throw inside `then` rejects). */
const thrown = (fn: () => unknown): Promise<BusError> => rejection(Promise.resolve().then(fn));

describe('checkDurationMs', () => {
  it('accepts a number of ms > 0 up to the timer limit', () => {
    for (const ok of [1, 0.5, 30_000, MAX_TIMER_MS]) expect(checkDurationMs(ok, 'x')).toBe(ok);
  });

  it('refuses 0, negatives, NaN, Infinity, past the limit and non-numbers, naming the type', async () => {
    for (const bad of [0, -1, Number.NaN, Infinity, MAX_TIMER_MS + 1, '5', null, undefined]) {
      const error = await thrown(() => checkDurationMs(bad, 'lock: ttlMs'));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toMatch(/^lock: ttlMs must be a number of ms > 0 and <= 2147483647/);
    }
    expect((await thrown(() => checkDurationMs('5', 'timeoutMs'))).message).toBe(
      'timeoutMs must be a number of ms > 0 and <= 2147483647 (about 24.8 days), got the string "5"',
    );
  });

  it('accepts 0 with zero', async () => {
    expect(checkDurationMs(0, 'x', { zero: true })).toBe(0);
    expect((await thrown(() => checkDurationMs(-1, 'x', { zero: true }))).message).toContain(
      '>= 0',
    );
  });

  it('accepts any finite duration with unbounded, never Infinity or NaN', async () => {
    expect(checkDurationMs(PAST_LIMIT_MS, 'x', { unbounded: true })).toBe(PAST_LIMIT_MS);
    for (const bad of [Infinity, Number.NaN, 0, '1']) {
      expect(
        (await thrown(() => checkDurationMs(bad, 'put: ttlMs', { unbounded: true }))).message,
      ).toMatch(/^put: ttlMs must be a finite number of ms > 0, got /);
    }
  });
});

describe('checkCount', () => {
  it('accepts safe integers from min to max', () => {
    expect(checkCount(1, 'x')).toBe(1);
    expect(checkCount(0, 'x', 0)).toBe(0);
    expect(checkCount(1_000, 'x', 1, 1_000)).toBe(1_000);
  });

  it('refuses fractions, NaN, unsafe integers, strings and out-of-range values', async () => {
    for (const bad of [0, 1.5, Number.NaN, Infinity, 2 ** 53, '2', null]) {
      expect((await thrown(() => checkCount(bad, 'x'))).code).toBe('INVALID_ARGUMENT');
    }
    expect((await thrown(() => checkCount('2', 'startCluster: workers'))).message).toBe(
      'startCluster: workers must be an integer >= 1, got the string "2"',
    );
    expect((await thrown(() => checkCount(1_001, 'maxDepth', 1, 1_000))).message).toBe(
      'maxDepth must be an integer from 1 to 1000, got 1001',
    );
  });
});

describe('DeadlineTimer', () => {
  it("does not fire early for a deadline past Node's 2^31 − 1 ms limit, and fires once", () => {
    fakeTimers();
    let fired = 0;
    const timer = new DeadlineTimer(() => fired++);
    timer.arm(performance.now() + PAST_LIMIT_MS);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).toBe(0);
    expect(vi.getTimerCount()).toBe(1); // re-armed for what is left
    vi.advanceTimersByTime(PAST_LIMIT_MS - MAX_TIMER_MS - 2);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(1);
    expect(timer.at).toBe(Number.POSITIVE_INFINITY);
    vi.advanceTimersByTime(PAST_LIMIT_MS);
    expect(fired).toBe(1);
  });

  it('is armed for the earliest of many deadlines; set() moves it either way', () => {
    fakeTimers();
    const fired: number[] = [];
    const timer = new DeadlineTimer(() => fired.push(performance.now()));
    const t0 = performance.now();
    timer.arm(t0 + 100);
    timer.arm(t0 + 50);
    timer.arm(t0 + 200);
    timer.arm(Number.POSITIVE_INFINITY);
    expect(timer.at).toBe(t0 + 50);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(50);
    expect(fired).toEqual([t0 + 50]);
    timer.set(t0 + 80);
    timer.set(t0 + 120); // later: set moves it, arm would not
    vi.advanceTimersByTime(40);
    expect(fired).toHaveLength(1);
    vi.advanceTimersByTime(30);
    expect(fired).toEqual([t0 + 50, t0 + 120]);
    timer.set(t0 + 500);
    timer.set(Number.POSITIVE_INFINITY);
    expect(vi.getTimerCount()).toBe(0);
    timer.arm(t0 + 600);
    timer.clear();
    timer.clear();
    vi.advanceTimersByTime(1_000);
    expect(fired).toHaveLength(2);
  });

  it('never calls onDue before its deadline by its own clock (a timer that fires early re-arms)', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let clock = 0;
    let fired = 0;
    const timer = new DeadlineTimer(() => fired++, { now: () => clock });
    timer.set(100);
    clock = 60; // the timer fires at 100 ms of timers time, the clock says 60
    vi.advanceTimersByTime(100);
    expect(fired).toBe(0);
    clock = 100;
    vi.advanceTimersByTime(40);
    expect(fired).toBe(1);
  });

  it('lets onDue arm it again', () => {
    fakeTimers();
    let fired = 0;
    const timer = new DeadlineTimer(() => {
      if (++fired < 3) timer.arm(performance.now() + 10);
    });
    timer.arm(performance.now() + 10);
    vi.advanceTimersByTime(100);
    expect(fired).toBe(3);
  });

  it("is unref'd unless ref, and refuses NaN", async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const lastTimer = () => spy.mock.results.at(-1)?.value as NodeJS.Timeout;
    const unref = new DeadlineTimer(() => {});
    const ref = new DeadlineTimer(() => {}, { ref: true });
    unref.arm(performance.now() + 60_000);
    const unrefHasRef = lastTimer().hasRef();
    ref.arm(performance.now() + 60_000);
    expect([unrefHasRef, lastTimer().hasRef()]).toEqual([false, true]);
    unref.clear();
    ref.clear();
    expect((await thrown(() => unref.set(Number.NaN))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('the users of DeadlineTimer', () => {
  it('PendingCalls: a timeout past the timer limit is not hit early (regression: after 1 ms)', () => {
    fakeTimers();
    const errors: BusError[] = [];
    const pending = new PendingCalls();
    pending.add(1, {
      resolve: () => {},
      reject: (error) => errors.push(error),
      method: 'slow',
      to: 2,
      timeoutMs: PAST_LIMIT_MS,
    });
    vi.advanceTimersByTime(MAX_TIMER_MS + 1);
    expect(errors).toEqual([]);
    vi.advanceTimersByTime(PAST_LIMIT_MS - MAX_TIMER_MS - 1);
    expect(errors.map((e) => e.code)).toEqual(['TIMEOUT']);
    expect(pending.size).toBe(0);
  });

  it('ExpiryQueue: a TTL past the timer limit is not due early, on the epoch clock', () => {
    fakeTimers();
    let due = 0;
    const queue = new ExpiryQueue(() => {
      due++;
      while (queue.popDue(Date.now()) !== undefined);
    });
    queue.push({ at: Date.now() + PAST_LIMIT_MS, store: 's', key: 'k' });
    queue.push({ at: Date.now() + PAST_LIMIT_MS + 10, store: 's', key: 'k2' });
    vi.advanceTimersByTime(MAX_TIMER_MS + 1);
    expect(due).toBe(0);
    vi.advanceTimersByTime(PAST_LIMIT_MS - MAX_TIMER_MS - 1);
    expect([due, queue.size]).toEqual([1, 1]);
    vi.advanceTimersByTime(10);
    expect([due, queue.size]).toEqual([2, 0]);
  });
});

describe('deadline()', () => {
  it('never arms a timer for Infinity, and fires 0 from a timer, not synchronously', () => {
    fakeTimers();
    let fired = 0;
    const never = deadline(() => fired++, Infinity);
    expect(vi.getTimerCount()).toBe(0);
    never.clear();
    deadline(() => fired++, 0);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(0);
    expect(fired).toBe(1);
  });
});

describe('sleep()', () => {
  it('resolves after ms, past the timer limit too, leaving no timer', async () => {
    fakeTimers();
    let done = false;
    const slept = sleep(PAST_LIMIT_MS).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS + 1);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(PAST_LIMIT_MS - MAX_TIMER_MS - 1);
    await slept;
    expect(done).toBe(true);
  });

  it('rejects at once with ABORTED for an already-aborted signal, arming nothing', async () => {
    fakeTimers();
    const controller = new AbortController();
    const reason = new Error('gave up');
    controller.abort(reason);
    const error = await rejection(sleep(1_000, controller.signal));
    expect(error).toMatchObject({
      code: 'ABORTED',
      message: 'the wait was aborted',
      cause: reason,
    });
    expect(vi.getTimerCount()).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('rejects with ABORTED when the signal fires later, clearing its timer and listener', async () => {
    fakeTimers();
    const controller = new AbortController();
    const slept = sleep(1_000, controller.signal, { what: 'update' });
    expect(vi.getTimerCount()).toBe(1);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(500);
    controller.abort('stop');
    const error = await rejection(slept);
    expect(error).toMatchObject({ code: 'ABORTED', message: 'update was aborted', cause: 'stop' });
    expect(vi.getTimerCount()).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('removes its listener when it resolves', async () => {
    fakeTimers();
    const controller = new AbortController();
    const slept = sleep(10, controller.signal);
    await vi.advanceTimersByTimeAsync(10);
    await slept;
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('keeps the process alive unless unref, and rejects NaN instead of throwing', async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const lastTimer = () => spy.mock.results.at(-1)?.value as NodeJS.Timeout;
    const controller = new AbortController();
    const kept = sleep(60_000, controller.signal);
    const keptRef = lastTimer().hasRef();
    const unref = sleep(60_000, controller.signal, { unref: true });
    expect([keptRef, lastTimer().hasRef()]).toEqual([true, false]);
    controller.abort();
    expect((await rejection(kept)).code).toBe('ABORTED');
    expect((await rejection(unref)).code).toBe('ABORTED');
    expect((await rejection(sleep(Number.NaN))).code).toBe('INVALID_ARGUMENT');
  });
});
