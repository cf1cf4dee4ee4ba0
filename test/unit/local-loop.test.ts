/**
 * The primary's calls to itself (its own `call('primary', …)` and its own store operations) yield
 * to the event loop: a loop of 200,000 awaited local calls does not freeze routing, timers or
 * signals for the whole loop (a 10 ms timer fired after 401 ms before).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineContract } from '../../src/index.js';
import { StoreHost } from '../../src/state/host.js';
import { type Harness, harness } from './helpers.js';

const contract = defineContract({
  methods: { noop: { output: z.number() }, ping: { output: z.string() } },
  stores: { counter: z.number() },
});

let h: Harness<typeof contract> | undefined;
let host: StoreHost | undefined;

afterEach(async () => {
  await host?.close();
  host = undefined;
  if (h !== undefined) expect(await h.close()).toBe(0);
  h = undefined;
});

/**
 * Runs `loop` while a 10 ms timer is armed and a worker calls the primary every ms; returns how
 * late the timer fired (ms), whether it fired while the loop still ran (before, it could fire only
 * once the loop was over), and how many worker calls were answered while the loop ran.
 */
async function underLoop(loop: () => Promise<void>) {
  const { primary, workers } = h!;
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
  const answeredBefore = answered;
  await loop();
  const loopEnded = performance.now();
  const answeredDuring = answered - answeredBefore;
  running = false;
  await Promise.all([timer, caller]);
  void primary;
  return { lateMs: firedAt - armed - 10, firedDuringLoop: firedAt < loopEnded, answeredDuring };
}

describe('local calls yield to the event loop (regression: a loop of local calls froze the primary)', () => {
  it("a loop of 200,000 awaited call('primary') lets a 10 ms timer fire on time and worker calls be routed", async () => {
    h = await harness(contract, 1);
    h.primary.handle('noop', () => 1);
    h.primary.handle('ping', () => 'pong');
    const { lateMs, firedDuringLoop, answeredDuring } = await underLoop(async () => {
      for (let i = 0; i < 200_000; i++) await h!.primary.call('primary', 'noop');
    });
    // The slice is 5 ms: the timer is late by about a slice (measured 2-34 ms). The bound is
    // generous for a loaded machine; that it fired while the loop ran is the point.
    expect(firedDuringLoop).toBe(true);
    expect(lateMs).toBeLessThan(250);
    // Before, none was answered until the loop ended.
    expect(answeredDuring).toBeGreaterThan(0);
  });

  it('a loop of 200,000 awaited store.increment() in the primary lets a 10 ms timer fire on time and worker calls be routed', async () => {
    h = await harness(contract, 1);
    h.primary.handle('ping', () => 'pong');
    host = await StoreHost.open(h.primary, {});
    const counter = h.primary.store('counter');
    const { lateMs, firedDuringLoop, answeredDuring } = await underLoop(async () => {
      for (let i = 0; i < 200_000; i++) await counter.increment('k');
    });
    expect(firedDuringLoop).toBe(true);
    expect(lateMs).toBeLessThan(250);
    // Before, none was answered until the loop ended.
    expect(answeredDuring).toBeGreaterThan(0);
    expect(await counter.get('k')).toBe(200_000);
  });
});
