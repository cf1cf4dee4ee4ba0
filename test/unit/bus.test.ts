/** Protocol logic over in-memory links: routing, settlement on every path, validation, leaks. */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BusError, defineContract } from '../../src/index.js';
import type { PrimaryBus } from '../../src/internal.js';
import { type Harness, harness, rejection, until } from './helpers.js';

const contract = defineContract({
  methods: {
    add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
    hang: {},
    wait: { output: z.string() },
    bad: { output: z.number() },
    who: { output: z.union([z.literal('primary'), z.number()]) },
  },
  events: { tick: z.object({ n: z.number() }) },
});
type C = typeof contract;

/** What the primary knows of its workers, for assertions. */
function internals(bus: PrimaryBus<C>): {
  workers: { get(id: number): { handles: ReadonlySet<string> } | undefined };
} {
  return { workers: { get: (id) => bus.inspectWorker(id) } };
}

let h: Harness<C> | undefined;
afterEach(async () => {
  if (h !== undefined) {
    // Leak check: nothing pending anywhere once everything is closed.
    expect(await h.close()).toBe(0);
    for (const p of h.pairs) {
      expect(p.a.listenerCount()).toBe(0);
      expect(p.b.listenerCount()).toBe(0);
    }
    h = undefined;
  }
});

async function start(count = 2, callTimeoutMs?: number): Promise<Harness<C>> {
  h = await harness(contract, count, callTimeoutMs === undefined ? {} : { callTimeoutMs });
  return h;
}

describe('routing', () => {
  it('routes primary -> worker, worker -> primary, worker -> worker and any', async () => {
    const { primary, workers } = await start(3);
    for (const w of workers) w.handle('add', ({ a, b }) => a + b);
    for (const w of workers) w.handle('who', (_i, ctx) => ctx.caller);
    primary.handle('who', (_i, ctx) => ctx.caller);
    await until(() =>
      workers.every(
        (_, i) =>
          internals(primary)
            .workers.get(i + 1)
            ?.handles.has('add') === true,
      ),
    );

    expect(await primary.call(1, 'add', { a: 1, b: 2 })).toBe(3);
    expect(await workers[0]!.call('primary', 'who')).toBe(1);
    expect(await workers[0]!.call(3, 'who')).toBe(1);
    expect(await primary.call(2, 'who')).toBe('primary');
    const anyResults = new Set<number>();
    for (let i = 0; i < 6; i++) anyResults.add((await workers[1]!.call('any', 'who')) as number);
    expect(anyResults.size).toBe(1); // every 'any' call came from worker 2
    expect(
      await workers[2]!.call('primary', 'add', { a: 1, b: 1 }).catch((e: BusError) => e.code),
    ).toBe('NO_HANDLER');
  });

  it('spreads any over the workers that handle the method, round-robin', async () => {
    const { primary, workers } = await start(3);
    workers.forEach((w, i) => {
      if (i !== 1) w.handle('wait', () => `w${i + 1}`);
    });
    await until(() => internals(primary).workers.get(3)?.handles.has('wait') === true);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(await primary.call('any', 'wait'));
    expect([...seen].sort()).toEqual(['w1', 'w3']);
  });

  it('gathers one settled result per worker with callAll, from the primary and a worker', async () => {
    const { primary, workers } = await start(3);
    workers[0]!.handle('wait', () => 'one');
    workers[2]!.handle('wait', () => {
      throw new Error('three failed');
    });
    for (const all of [await primary.callAll('wait'), await workers[1]!.callAll('wait')]) {
      expect(all.map((r) => [r.workerId, r.status])).toEqual([
        [1, 'fulfilled'],
        [2, 'rejected'],
        [3, 'rejected'],
      ]);
      const [one, two, three] = all;
      expect(one?.status === 'fulfilled' && one.value).toBe('one');
      expect(two?.status === 'rejected' && two.error.code).toBe('NO_HANDLER');
      expect(three?.status === 'rejected' && three.error.code).toBe('REMOTE');
    }
  });
});

describe('settlement', () => {
  it('rejects with NO_TARGET for an unknown worker, INVALID_ARGUMENT for misuse', async () => {
    const { primary, workers } = await start(1);
    expect((await rejection(primary.call(9, 'hang'))).code).toBe('NO_TARGET');
    expect((await rejection(workers[0]!.call(9, 'hang'))).code).toBe('NO_TARGET');
    expect((await rejection(primary.call(0, 'hang'))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(primary.call(1, 'nope' as 'hang'))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(primary.call(1, 'hang', undefined, { timeoutMs: -1 }))).code).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('times out, tells the handler, and names the caller line in the stack', async () => {
    const { primary, workers } = await start(1);
    let handlerSignal: AbortSignal | undefined;
    workers[0]!.handle('hang', (_i, ctx) => {
      handlerSignal = ctx.signal;
      return new Promise<void>(() => {});
    });
    const error = await rejection(primary.call(1, 'hang', undefined, { timeoutMs: 30 }));
    expect(error.code).toBe('TIMEOUT');
    expect(error.stack).toContain('bus.test.ts');
    await until(() => handlerSignal?.aborted === true);
    expect((handlerSignal!.reason as BusError).code).toBe('ABORTED');
  });

  it('aborts with the caller signal, before and after sending, through the primary too', async () => {
    const { workers } = await start(2);
    let remote: AbortSignal | undefined;
    workers[1]!.handle('hang', (_i, ctx) => {
      remote = ctx.signal;
      return new Promise<void>(() => {});
    });
    const controller = new AbortController();
    const pending = workers[0]!.call(2, 'hang', undefined, { signal: controller.signal });
    await until(() => remote !== undefined);
    controller.abort();
    expect((await rejection(pending)).code).toBe('ABORTED');
    await until(() => remote?.aborted === true);
    expect(
      (await rejection(workers[0]!.call(2, 'hang', undefined, { signal: AbortSignal.abort() })))
        .code,
    ).toBe('ABORTED');
  });

  it('rejects calls routed to a worker with TARGET_EXITED at once when it goes, not others', async () => {
    const { primary, workers } = await start(3);
    workers[1]!.handle('hang', () => new Promise<void>(() => {}));
    workers[2]!.handle('wait', () => new Promise<string>((r) => setTimeout(() => r('ok'), 50)));
    const fromPrimary = primary.call(2, 'hang', undefined, { timeoutMs: 10_000 });
    const fromWorker = workers[0]!.call(2, 'hang', undefined, { timeoutMs: 10_000 });
    const other = workers[0]!.call(3, 'wait');
    await until(() => workers[1]!.pendingCount === 2);
    const t0 = Date.now();
    h!.kill(1);
    expect((await rejection(fromPrimary)).code).toBe('TARGET_EXITED');
    expect((await rejection(fromWorker)).code).toBe('TARGET_EXITED');
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(await other).toBe('ok');
    expect((await rejection(primary.call(2, 'hang'))).code).toBe('NO_TARGET');
  });

  it('aborts the handlers serving a caller that goes away', async () => {
    const { workers } = await start(2);
    let remote: AbortSignal | undefined;
    workers[1]!.handle('hang', (_i, ctx) => {
      remote = ctx.signal;
      return new Promise<void>(() => {});
    });
    const lost = workers[0]!.call(2, 'hang').catch((e: BusError) => e.code);
    await until(() => remote !== undefined);
    h!.kill(0);
    await until(() => remote?.aborted === true);
    expect(await lost).toBe('CLOSED');
  });

  it('rejects pending calls with CLOSED when the bus closes, and new ones too', async () => {
    const { primary, workers } = await start(1);
    workers[0]!.handle('hang', () => new Promise<void>(() => {}));
    primary.handle('hang', () => new Promise<void>(() => {}));
    const pending = primary.call(1, 'hang');
    const local = primary.call('primary', 'hang');
    await until(() => workers[0]!.pendingCount === 1);
    await primary.close();
    expect((await rejection(pending)).code).toBe('CLOSED');
    expect((await rejection(local)).code).toBe('CLOSED');
    expect((await rejection(primary.call(1, 'hang'))).code).toBe('CLOSED');
    expect(() => primary.publish('tick', { n: 1 })).toThrow(BusError);
  });
});

describe('validation', () => {
  it('rejects bad input with BAD_INPUT and bad output with BAD_OUTPUT, both with issues', async () => {
    const { primary, workers } = await start(1);
    let called = false;
    workers[0]!.handle('add', () => {
      called = true;
      return 0;
    });
    workers[0]!.handle('bad', () => 'str' as unknown as number);
    const badIn = await rejection(
      primary.call(1, 'add', { a: 1, b: 'x' } as unknown as { a: number; b: number }),
    );
    expect(badIn.code).toBe('BAD_INPUT');
    expect(badIn.issues?.[0]?.path).toEqual(['b']);
    expect(called).toBe(false);
    const badOut = await rejection(primary.call(1, 'bad'));
    expect(badOut.code).toBe('BAD_OUTPUT');
    expect(badOut.issues?.[0]?.code).toBe('invalid_type');
  });

  it('validates events at the publisher and every receiver', async () => {
    const { primary, workers } = await start(2);
    const got: Array<[number | string, number]> = [];
    primary.subscribe('tick', ({ n }, { source }) => {
      got.push(['primary', n]);
      expect(source).toBe(1);
    });
    workers[1]!.subscribe('tick', ({ n }) => {
      got.push([2, n]);
    });
    const off = workers[0]!.subscribe('tick', ({ n }) => {
      got.push([1, n]);
    });
    expect(() => workers[0]!.publish('tick', { n: 'x' } as unknown as { n: number })).toThrow(
      expect.objectContaining({ code: 'BAD_PAYLOAD' }),
    );
    workers[0]!.publish('tick', { n: 1 });
    await until(() => got.length === 3);
    expect(got.sort()).toEqual(
      [
        [1, 1],
        [2, 1],
        ['primary', 1],
      ].sort(),
    );
    off();
    workers[0]!.publish('tick', { n: 2 });
    await until(() => got.length === 5);
    expect(got.filter(([who]) => who === 1)).toHaveLength(1);
  });

  it('reports a subscriber that throws, and still runs the others', async () => {
    const { primary } = await start(1);
    const errors: BusError[] = [];
    primary.on('error', (e) => errors.push(e));
    let ran = false;
    primary.subscribe('tick', () => {
      throw new Error('subscriber bug');
    });
    primary.subscribe('tick', () => {
      ran = true;
    });
    primary.publish('tick', { n: 1 });
    await until(() => ran && errors.length === 1);
    expect(errors[0]?.code).toBe('SUBSCRIBER_FAILED');
    expect(errors[0]?.message).toContain('subscriber bug');
  });
});

describe('ordering and startup (regressions)', () => {
  it('a publish then a call from one sender: the subscriber sees the event before the handler runs', async () => {
    const { primary, workers } = await start(2);
    const seen = new Set<number>();
    // In effect for every publisher once the primary has it (patterns: the hub routes by subscription).
    await workers[1]!.subscribe('tick', ({ n }) => {
      seen.add(n);
    }).ready;
    workers[1]!.handle('who', () => (seen.has(41) ? 41 : 0));
    primary.subscribe('tick', ({ n }) => {
      seen.add(n + 1_000);
    });
    primary.handle('who', () => (seen.has(1_041) ? 1_041 : 0));
    for (const bus of [primary, workers[0]!]) {
      for (let i = 0; i < 50; i++) {
        seen.clear();
        bus.publish('tick', { n: 41 });
        expect(await bus.call(2, 'who')).toBe(41);
        if (bus !== primary) {
          bus.publish('tick', { n: 41 });
          expect(await bus.call('primary', 'who')).toBe(1_041);
        }
      }
    }
    // The primary's call to itself keeps its order with its own publish, too.
    seen.clear();
    primary.publish('tick', { n: 41 });
    expect(await primary.call('primary', 'who')).toBe(1_041);
  });

  it("a worker's first call and events reach handlers the primary registers right after startup", async () => {
    const { primaryBus } = await import('../../src/primary-bus.js');
    const { workerBus } = await import('../../src/connect.js');
    const { memoryPair } = await import('../../src/transport/memory.js');
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const primary = primaryBus(contract, {}, { connected: () => ready() });
    const pair = memoryPair();
    primary.attachLink(1, pair.a);
    const worker = workerBus(contract, pair.b, 1, {}, () => {
      // Right after connect(): before the primary has registered anything.
      worker.publish('tick', { n: 7 });
      void worker.call('primary', 'who').then((who) => results.push(who));
    });
    const results: Array<number | 'primary'> = [];
    await isReady;
    const got: number[] = [];
    // As user code does right after `await startCluster()`:
    primary.handle('who', (_i, ctx) => ctx.caller);
    primary.subscribe('tick', ({ n }) => {
      got.push(n);
    });
    primary.release();
    await until(() => results.length === 1 && got.length === 1);
    expect(results).toEqual([1]);
    expect(got).toEqual([7]);
    await worker.close();
    await primary.close();
    expect(primary.pendingCount + worker.pendingCount).toBe(0);
  });
});

describe('misuse', () => {
  it('refuses a second handler, unknown names and reserved contract names', async () => {
    const { primary } = await start(1);
    const off = primary.handle('wait', () => 'x');
    expect(() => primary.handle('wait', () => 'y')).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    off();
    primary.handle('wait', () => 'y');
    expect(() => primary.handle('nope' as 'wait', () => 'x')).toThrow(BusError);
    expect(() => primary.subscribe('nope' as 'tick', () => {})).toThrow(BusError);
    // biome-ignore lint/suspicious/noThenProperty: the reserved name is what is tested
    expect(() => defineContract({ methods: { then: {} } })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => defineContract({ methods: { $x: {} } })).toThrow(BusError);
    expect(() => defineContract({ events: { e: {} as z.ZodString } })).toThrow(BusError);
  });
});
