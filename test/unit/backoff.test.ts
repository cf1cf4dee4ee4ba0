/** Restart intensity and exponential backoff of one slot (pure: time is passed in). */
import { describe, expect, it } from 'vitest';
import { backoffDelay, RestartWindow } from '../../src/supervisor/backoff.js';

describe('backoffDelay', () => {
  it('is 0 for the first restart, then doubles from initialMs, capped at maxMs', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, 100, 1_000))).toEqual([
      0, 100, 200, 400, 800, 1_000,
    ]);
    expect(backoffDelay(10_000, 100, 5_000)).toBe(5_000);
  });
});

describe('RestartWindow', () => {
  const options = { maxRestarts: 3, windowMs: 1_000, initialMs: 100, maxMs: 150 };

  it('allows maxRestarts within the window, with backoff, then refuses', () => {
    const w = new RestartWindow(options);
    expect(w.attempt(0)).toEqual({ restart: true, delayMs: 0, restarts: 1 });
    expect(w.attempt(10)).toEqual({ restart: true, delayMs: 100, restarts: 2 });
    expect(w.attempt(20)).toEqual({ restart: true, delayMs: 150, restarts: 3 });
    expect(w.attempt(30)).toEqual({ restart: false, restarts: 3 });
    expect(w.attempt(999)).toEqual({ restart: false, restarts: 3 });
  });

  it('forgets restarts older than the window: a worker that stays up resets its backoff', () => {
    const w = new RestartWindow(options);
    w.attempt(0);
    w.attempt(100);
    expect(w.count(1_000)).toBe(1); // the one at 0 is exactly windowMs old: gone
    expect(w.attempt(1_100)).toEqual({ restart: true, delayMs: 0, restarts: 1 });
  });

  it('refuses at once with maxRestarts 0, and reset() forgets everything', () => {
    const none = new RestartWindow({ ...options, maxRestarts: 0 });
    expect(none.attempt(0)).toEqual({ restart: false, restarts: 0 });
    const w = new RestartWindow(options);
    w.attempt(0);
    w.attempt(1);
    w.attempt(2);
    w.reset();
    expect(w.attempt(3)).toEqual({ restart: true, delayMs: 0, restarts: 1 });
  });
});
