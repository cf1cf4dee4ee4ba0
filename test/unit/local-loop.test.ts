/**
 * The primary's calls to itself (its own `call('primary', …)` and its own store operations) yield
 * to the event loop: a loop of 200,000 awaited local calls does not freeze routing, timers or
 * signals for the whole loop (a 10 ms timer fired after 401 ms before).
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineContract } from '../../src/index.js';
import { type StoreHarness, storesPerTest } from './helpers.js';

const contract = defineContract({
  methods: { noop: { output: z.number() }, ping: { output: z.string() } },
  stores: { counter: z.number() },
});

/** A primary with its store host and one worker, closed (and checked for leaks) after each test. */
const start = storesPerTest(contract);
let h: StoreHarness<typeof contract> | undefined;

/**
 * Runs `loop` while a 10 ms timer is armed, a 10 ms interval ticks, and a worker calls the
 * primary in a loop. Returns how late the timer fired (ms), whether it fired while the loop still
 * ran (before, it could fire only once the loop was over), the median gap between the interval's
 * ticks during the loop (ms; robust to one pause of a loaded machine), and how many worker calls
 * were answered while the loop ran.
 */
async function underLoop(loop: () => Promise<void>) {
  const { workers } = h!;
  let running = true;
  let answered = 0;
  const caller = (async () => {
    while (running) {
      await workers[0]!.call('primary', 'ping');
      answered++;
    }
  })();
  const armed = performance.now();
  let firedAt = Number.NaN;
  const timer = new Promise<void>((resolve) =>
    setTimeout(() => {
      firedAt = performance.now();
      resolve();
    }, 10),
  );
  const ticks: number[] = [armed];
  const interval = setInterval(() => ticks.push(performance.now()), 10);
  const answeredBefore = answered;
  await loop();
  const loopEnded = performance.now();
  clearInterval(interval);
  const answeredDuring = answered - answeredBefore;
  running = false;
  await Promise.all([timer, caller]);
  const gaps = ticks
    .slice(1)
    .map((t, k) => t - ticks[k]!)
    .sort((a, b) => a - b);
  return {
    lateMs: firedAt - armed - 10,
    firedDuringLoop: firedAt < loopEnded,
    ticksDuringLoop: gaps.length,
    medianGapMs: gaps.length === 0 ? Number.POSITIVE_INFINITY : gaps[gaps.length >> 1]!,
    answeredDuring,
  };
}

/** What a loop of local calls must leave the event loop: timers and routing keep going. */
function expectResponsive(result: Awaited<ReturnType<typeof underLoop>>): void {
  // Before, nothing ran until the loop ended: the timer fired after it, the interval never
  // ticked during it, no worker call was answered.
  expect(result.firedDuringLoop).toBe(true);
  expect(result.ticksDuringLoop).toBeGreaterThanOrEqual(3);
  expect(result.answeredDuring).toBeGreaterThan(0);
  // The slice is 5 ms: a 10 ms interval ticks about every 10-15 ms (the timer measured 2-34 ms
  // late on a quiet machine). The median gap is generous for a loaded one.
  expect(result.medianGapMs).toBeLessThan(60);
}

describe('local calls yield to the event loop (regression: a loop of local calls froze the primary)', () => {
  it("a loop of 200,000 awaited call('primary') lets a 10 ms timer fire on time and worker calls be routed", async () => {
    h = await start(1);
    h.primary.handle('noop', () => 1);
    h.primary.handle('ping', () => 'pong');
    const result = await underLoop(async () => {
      for (let i = 0; i < 200_000; i++) await h!.primary.call('primary', 'noop');
    });
    expectResponsive(result);
  });

  it('a loop of 200,000 awaited store.increment() in the primary lets a 10 ms timer fire on time and worker calls be routed', async () => {
    h = await start(1);
    h.primary.handle('ping', () => 'pong');
    const counter = h.primary.store('counter');
    const result = await underLoop(async () => {
      for (let i = 0; i < 200_000; i++) await counter.increment('k');
    });
    expectResponsive(result);
    expect(await counter.get('k')).toBe(200_000);
  });
});
