/** The interval histogram of serve times: its percentiles, their error bound, and its reset. */
import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../../src/util/latency-histogram.js';

describe('LatencyHistogram', () => {
  it('is null before anything is recorded', () => {
    expect(new LatencyHistogram().take()).toBeNull();
  });

  it('gives p50, p99 and max within 9% above the truth, never over the max', () => {
    const h = new LatencyHistogram();
    // 1..1000 ms: p50 is 500 ms, p99 990 ms, max 1000 ms.
    for (let ms = 1; ms <= 1000; ms++) h.record(ms);
    const s = h.take()!;
    expect(s.count).toBe(1000);
    expect(s.max).toBe(1000);
    expect(s.p50).toBeGreaterThanOrEqual(500);
    expect(s.p50).toBeLessThanOrEqual(500 * 1.091);
    expect(s.p99).toBeGreaterThanOrEqual(990);
    expect(s.p99).toBeLessThanOrEqual(1000);
  });

  it('a single duration is its own p50, p99 and max', () => {
    const h = new LatencyHistogram();
    h.record(30.5);
    expect(h.take()).toEqual({ p50: 30.5, p99: 30.5, max: 30.5, count: 1 });
  });

  it('take() resets: the next interval starts empty and sees only its own durations', () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 100; i++) h.record(200);
    expect(h.take()!.p99).toBe(200);
    expect(h.take()).toBeNull();
    for (let i = 0; i < 100; i++) h.record(2);
    const s = h.take()!;
    expect(s.count).toBe(100);
    expect(s.max).toBe(2);
    expect(s.p99).toBe(2);
  });

  it('p99 sees the slow 2%, p50 does not', () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 98; i++) h.record(1);
    for (let i = 0; i < 2; i++) h.record(50);
    const s = h.take()!;
    expect(s.p50).toBeGreaterThanOrEqual(1);
    expect(s.p50).toBeLessThanOrEqual(1.091);
    expect(s.p99).toBeGreaterThanOrEqual(50);
    expect(s.p99).toBeLessThanOrEqual(50);
  });

  it('sub-microsecond, zero, negative and huge durations are kept in range', () => {
    const h = new LatencyHistogram();
    h.record(0);
    h.record(-1);
    h.record(0.0001);
    h.record(10 * 60_000);
    const s = h.take()!;
    expect(s.count).toBe(4);
    expect(s.p50).toBeLessThanOrEqual(0.008);
    expect(s.max).toBe(600_000);
    expect(s.p99).toBe(600_000);
  });
});
