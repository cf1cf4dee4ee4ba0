/** A peer that stops reading: frames wait in a bounded queue, then OVERLOADED; nothing hangs. */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type BusError, defineContract } from '../../src/index.js';
import { type Harness, harness, until } from './helpers.js';

const contract = defineContract({
  methods: { echo: { input: z.string(), output: z.string() } },
  events: { note: z.string(), doc: z.unknown() },
});

let h: Harness<typeof contract> | undefined;
afterEach(async () => {
  if (h !== undefined) expect(await h.close()).toBe(0);
  h = undefined;
});

describe('backpressure', () => {
  it('holds frames while the channel does not write, refuses past maxQueueBytes, and recovers', async () => {
    h = await harness(contract, 1, { maxQueueBytes: 20_000 });
    const { primary, workers, pairs } = h;
    workers[0]!.handle('echo', (s) => s);
    await workers[0]!.subscribe('note', () => {}).ready; // the hub sends events to subscribers only
    const toWorker = pairs[0]!.a; // the primary's end
    toWorker.stalled = true;

    // Bursts over many ticks: each tick's frames leave as one message until 16 messages sit
    // unwritten in the channel; then frames wait in the queue, until it holds ~20 kB.
    const payload = 'x'.repeat(500);
    const outcomes: Array<Promise<string>> = [];
    for (let tick = 0; tick < 40; tick++) {
      for (let i = 0; i < 5; i++) {
        outcomes.push(
          primary.call(1, 'echo', payload).then(
            () => 'ok',
            (e: BusError) => e.code,
          ),
        );
      }
      await new Promise((r) => setImmediate(r));
    }
    const peer = primary.inspectWorker(1)!.peer;
    expect(peer.backlog.unwritten).toBe(16);
    expect(peer.backlog.queued).toBeGreaterThan(20);
    expect(peer.backlog.queued).toBeLessThan(60);
    // Past the bound, calls are refused at once instead of queueing without limit.
    const refused = await Promise.all(outcomes.slice(120));
    expect(refused.every((c) => c === 'OVERLOADED')).toBe(true);
    const errors: string[] = [];
    primary.on('error', (e) => errors.push(e.code));
    primary.publish('note', 'hi'); // the primary skips a worker that does not keep up, and says so
    expect(errors).toEqual(['OVERLOADED']);

    toWorker.resume();
    const all = await Promise.all(outcomes);
    // A prefix was accepted (16 unwritten messages, then ~20 kB of queue) and, once the channel
    // writes again, delivered in full and in order; everything after it was refused.
    const accepted = all.indexOf('OVERLOADED');
    expect(accepted).toBeGreaterThan(40);
    expect(all.slice(0, accepted).every((c) => c === 'ok')).toBe(true);
    expect(all.slice(accepted).every((c) => c === 'OVERLOADED')).toBe(true);
    await until(() => peer.backlog.queued === 0 && peer.backlog.unwritten === 0);
    expect(await primary.call(1, 'echo', 'after')).toBe('after');
  });

  it('counts nested payloads by what they hold (regression: below depth 3 a value counted as 64 bytes, an array as its first element times its length)', async () => {
    const limit = 1024 * 1024;
    h = await harness(contract, 1, { maxQueueBytes: limit });
    const { primary, pairs } = h;
    await h.workers[0]!.subscribe('doc', () => {}).ready; // the hub sends events to subscribers only
    pairs[0]!.a.stalled = true; // the worker stops reading
    const overloaded: BusError[] = [];
    primary.on('error', (e) => {
      if (e.code === 'OVERLOADED') overloaded.push(e);
    });
    // ~10 kB of JSON each, nearly all of it where the old estimate did not look.
    const doc = {
      a: { b: { c: { d: 'x'.repeat(5_000) } } },
      list: [1, ...Array.from({ length: 50 }, () => 'y'.repeat(100))],
    };
    const size = JSON.stringify(doc).length;
    let accepted = 0;
    while (overloaded.length === 0 && accepted < 50 * limit) {
      for (let i = 0; i < 5 && overloaded.length === 0; i++) {
        primary.publish('doc', doc);
        if (overloaded.length === 0) accepted += size;
      }
      await new Promise((r) => setImmediate(r));
    }
    expect(overloaded.length).toBe(1);
    // What waits is the queue (<= the limit) plus the 16 messages in the channel (<= 32 kB of
    // frames each, or one frame): about 1.5 MiB, never tens of MiB.
    expect(accepted).toBeLessThan(limit + 16 * (32 * 1024 + size) + size);
    pairs[0]!.a.resume();
  });

  it('throws OVERLOADED from a worker publish when its link to the primary is full', async () => {
    h = await harness(contract, 1, { maxQueueBytes: 5_000 });
    const { workers, pairs } = h;
    pairs[0]!.b.stalled = true; // the worker's end
    const codes = new Set<string>();
    for (let i = 0; i < 100; i++) {
      try {
        workers[0]!.publish('note', 'y'.repeat(400));
      } catch (e) {
        codes.add((e as BusError).code);
      }
    }
    expect([...codes]).toEqual(['OVERLOADED']);
    pairs[0]!.b.resume();
  });
});
