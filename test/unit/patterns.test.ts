/** Topic patterns over the in-memory harness: delivery, the hub's routing by subscription, misuse. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MAX_PATTERNS_PER_PROCESS } from '../../src/bus/pubsub.js';
import { type BusError, defineContract } from '../../src/index.js';
import { primaryBus } from '../../src/primary-bus.js';
import { harnessPerTest, rawChannel, rejection, until } from './helpers.js';

const contract = defineContract({
  events: {
    'cache.user': z.object({ key: z.string() }),
    'cache.session': z.object({ id: z.number() }),
    'orders.eu.paid': z.object({ amount: z.number() }),
    'orders.us.paid': z.object({ amount: z.number() }),
    'orders.eu.refunded': z.object({ amount: z.number(), reason: z.string() }),
    audit: z.string(),
  },
});
const start = harnessPerTest(contract);

/** Counts the event frames (alone or in batches) that reach a worker's end of its link. */
function countEvents(link: { onMessage(l: (m: unknown) => void): () => void }): () => string[] {
  const topics: string[] = [];
  link.onMessage((m) => {
    const frames = (m as { k?: string; f?: unknown[] }).k === 'b' ? (m as { f: unknown[] }).f : [m];
    for (const f of frames as Array<{ k?: string; m?: string }>) {
      if (f.k === 'evt' && f.m !== undefined && !f.m.startsWith('$')) topics.push(f.m);
    }
  });
  return () => topics;
}

describe('pattern subscriptions', () => {
  it('delivers every matching topic with its concrete topic in ctx.topic, from every process', async () => {
    const h = await start(2);
    const [w1, w2] = h.workers as [(typeof h.workers)[0], (typeof h.workers)[0]];
    const seen: string[] = [];
    await w2.subscribe('cache.*', (payload, { topic, source }) => {
      seen.push(`${topic}:${JSON.stringify(payload)}:${source}`);
    }).ready;
    await w2.subscribe('orders.>', (payload, { topic }) => {
      seen.push(`${topic}:${payload.amount}`);
    }).ready;
    h.primary.publish('cache.user', { key: 'u1' });
    w1.publish('cache.session', { id: 7 });
    w1.publish('orders.eu.paid', { amount: 3 });
    w1.publish('orders.eu.refunded', { amount: 4, reason: 'late' });
    w1.publish('audit', 'not matched');
    w2.publish('cache.user', { key: 'own' }); // its own publish too
    await until(() => seen.length === 5);
    expect(seen.sort()).toEqual([
      'cache.session:{"id":7}:1',
      'cache.user:{"key":"own"}:2',
      'cache.user:{"key":"u1"}:primary',
      'orders.eu.paid:3',
      'orders.eu.refunded:4',
    ]);
  });

  it('the primary forwards an event only to the workers with a matching subscription', async () => {
    const h = await start(3);
    const got = h.pairs.map((p) => countEvents(p.b));
    await h.workers[0]!.subscribe('orders.*.paid', () => {}).ready;
    await h.workers[1]!.subscribe('cache.>', () => {}).ready;
    // worker 3 subscribes to nothing
    h.primary.publish('orders.eu.paid', { amount: 1 });
    h.primary.publish('cache.user', { key: 'k' });
    h.primary.publish('audit', 'nobody');
    h.workers[2]!.publish('orders.us.paid', { amount: 2 });
    await until(() => got[0]!().length === 2 && got[1]!().length === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(got[0]!()).toEqual(['orders.eu.paid', 'orders.us.paid']);
    expect(got[1]!()).toEqual(['cache.user']);
    expect(got[2]!()).toEqual([]);
    expect([...h.primary.inspectWorker(1)!.patterns]).toEqual(['orders.*.paid']);
  });

  it('one event reaches each matching subscription once, and a worker gets one frame', async () => {
    const h = await start(1);
    const frames = countEvents(h.pairs[0]!.b);
    const calls: string[] = [];
    await h.workers[0]!.subscribe('cache.user', () => void calls.push('exact')).ready;
    await h.workers[0]!.subscribe('cache.*', () => void calls.push('one')).ready;
    await h.workers[0]!.subscribe('>', () => void calls.push('all')).ready;
    h.primary.publish('cache.user', { key: 'x' });
    await until(() => calls.length === 3);
    expect(calls.sort()).toEqual(['all', 'exact', 'one']);
    expect(frames()).toEqual(['cache.user']);
  });

  it('stops forwarding once the last subscriber of a pattern unsubscribes, and when the worker goes', async () => {
    const h = await start(2);
    const a = h.workers[0]!.subscribe('cache.*', () => {});
    const b = h.workers[0]!.subscribe('cache.*', () => {});
    await a.ready;
    a();
    await h.workers[0]!.subscribe('audit', () => {}).ready;
    expect([...h.primary.inspectWorker(1)!.patterns].sort()).toEqual(['audit', 'cache.*']);
    b();
    await until(() => !h.primary.inspectWorker(1)!.patterns.has('cache.*'));
    await h.workers[1]!.subscribe('orders.>', () => {}).ready;
    h.kill(1);
    await until(() => h.primary.inspectWorker(2) === undefined);
    expect(h.primary.inspectWorker(1)!.patterns.has('orders.>')).toBe(false);
  });

  it('validates each event against its concrete topic schema: an invalid one reaches no subscriber', async () => {
    const h = await start(2);
    const got: unknown[] = [];
    const errors: BusError[] = [];
    h.workers[1]!.on('error', (e) => errors.push(e));
    await h.workers[1]!.subscribe('orders.eu.*', (p) => void got.push(p)).ready;
    // A hostile worker 1 skips its bus: 'orders.eu.refunded' needs a reason.
    rawChannel(h.pairs[0]!).send({
      $cb: 1,
      k: 'evt',
      m: 'orders.eu.refunded',
      s: 1,
      p: { amount: 1 },
    });
    h.workers[0]!.publish('orders.eu.paid', { amount: 9 });
    await until(() => got.length === 1 && errors.length === 1);
    expect(got).toEqual([{ amount: 9 }]);
    expect(errors[0]!.code).toBe('BAD_PAYLOAD');
    expect(errors[0]!.message).toContain("'orders.eu.refunded'");
  });

  it('refuses invalid patterns, patterns that match no topic, and publishing to a pattern, with INVALID_ARGUMENT', () => {
    return start(1).then((h) => {
      const bus = h.workers[0]!;
      const bad = ['', 'cache..user', 'cache.', 'orders.>.paid', 'ca*', 'cache.us>', 'a b'];
      for (const p of bad) {
        // @ts-expect-error: not a pattern of the contract
        expect(() => bus.subscribe(p, () => {}), p).toThrow(
          expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
        );
      }
      // @ts-expect-error: matches no topic
      expect(() => bus.subscribe('users.*', () => {})).toThrow(/matches no topic/);
      // @ts-expect-error: a pattern is not a topic to publish on
      expect(() => bus.publish('cache.*', { key: 'x' })).toThrow(/is a pattern/);
      expect(bus.subscribers.size).toBe(0);
    });
  });

  it("a worker's sub.ready rejects with CLOSED when its bus closes first", async () => {
    const h = await start(1);
    const sub = h.workers[0]!.subscribe('cache.*', () => {});
    await h.workers[0]!.close();
    expect((await rejection(sub.ready)).code).toBe('CLOSED');
  });

  it('refuses topic names that are not concrete subjects in defineContract', () => {
    for (const name of ['a.*', 'a.>', 'a..b', '.a', 'a b']) {
      expect(() => defineContract({ events: { [name]: z.string() } }), name).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });

  it(`bounds a process at ${MAX_PATTERNS_PER_PROCESS} patterns: subscribe past it throws LIMIT_EXCEEDED`, async () => {
    const topics = Object.fromEntries(
      Array.from({ length: MAX_PATTERNS_PER_PROCESS + 1 }, (_, i) => [`t.${i}`, z.number()]),
    );
    const many = defineContract({ events: topics });
    const bus = primaryBus(many, {}, { connected: () => {} });
    // The topics are not literal types here: subscribe as the run time sees it.
    const subscribe = bus.subscribe.bind(bus) as unknown as (
      topic: string,
      h: () => void,
    ) => () => void;
    try {
      for (let i = 0; i < MAX_PATTERNS_PER_PROCESS; i++) subscribe(`t.${i}`, () => {});
      subscribe('t.0', () => {}); // a pattern already held costs nothing
      expect(() => subscribe(`t.${MAX_PATTERNS_PER_PROCESS}`, () => {})).toThrow(
        expect.objectContaining({ code: 'LIMIT_EXCEEDED' }),
      );
      expect(bus.subscribers.size).toBe(MAX_PATTERNS_PER_PROCESS);
    } finally {
      await bus.close();
    }
  });

  it("ignores and reports a hostile worker's patterns past the bound, and invalid ones", async () => {
    const big = defineContract({ events: { 'a.b': z.string() } });
    const { harness } = await import('./helpers.js');
    const h = await harness(big, 1);
    try {
      const errors: BusError[] = [];
      h.primary.on('error', (e) => errors.push(e));
      const raw = rawChannel(h.pairs[0]!);
      const patterns = Array.from({ length: MAX_PATTERNS_PER_PROCESS + 5 }, (_, i) => `x${i}.>`);
      raw.send({ $cb: 1, k: 'sub', a: [...patterns, 'bad..pattern'] });
      await until(() => errors.length >= 2);
      expect(h.primary.inspectWorker(1)!.patterns.size).toBe(MAX_PATTERNS_PER_PROCESS);
      expect(errors.map((e) => e.code).sort()).toEqual(['LIMIT_EXCEEDED', 'PROTOCOL']);
      raw.send({ $cb: 1, k: 'sub', r: patterns });
      await until(() => h.primary.inspectWorker(1)!.patterns.size === 0);
    } finally {
      expect(await h.close()).toBe(0);
    }
  });
});
