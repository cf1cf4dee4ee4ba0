/** Streamed responses over the in-memory harness: every route, flow control, every way to end. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MAX_STREAMS_PER_LINK } from '../../src/bus/streams.js';
import { type BusError, defineContract } from '../../src/index.js';
import { primaryBus } from '../../src/primary-bus.js';
import { encode, encodedSize } from '../../src/protocol/codec.js';
import { memoryPair } from '../../src/transport/memory.js';
import { harnessPerTest, rejection, until } from './helpers.js';

const contract = defineContract({
  methods: {
    count: { input: z.object({ n: z.number(), pad: z.number().optional() }), stream: z.number() },
    forever: { stream: z.object({ i: z.number(), pad: z.string() }) },
    failAfter: { input: z.number(), stream: z.number() },
    wrongItems: { stream: z.number() },
    notAGenerator: { stream: z.number() },
    add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
  },
});
const start = harnessPerTest(contract);

type Bus =
  | Awaited<ReturnType<typeof start>>['workers'][number]
  | Awaited<ReturnType<typeof start>>['primary'];

/** What the producer of `forever` did, per process. */
interface Probe {
  produced: number;
  finallyRan: boolean;
  aborted: unknown;
}

/** Registers the test handlers on `bus`; returns the probe of its `forever` generator. */
function serve(bus: Bus): Probe {
  const probe: Probe = { produced: 0, finallyRan: false, aborted: undefined };
  bus.handle('count', async function* ({ n }) {
    for (let i = 0; i < n; i++) yield i;
  });
  bus.handle('forever', async function* (_input, ctx) {
    ctx.signal.addEventListener('abort', () => {
      probe.aborted = ctx.signal.reason;
    });
    try {
      for (let i = 0; ; i++) {
        probe.produced++;
        yield { i, pad: 'x'.repeat(100) };
      }
    } finally {
      probe.finallyRan = true;
    }
  });
  bus.handle('failAfter', async function* (n) {
    for (let i = 0; i < n; i++) yield i;
    throw Object.assign(new Error('disk on fire'), { status: 507 });
  });
  bus.handle('wrongItems', async function* () {
    yield 1;
    yield 'two' as unknown as number;
  });
  // @ts-expect-error: a stream handler must return an async iterable
  bus.handle('notAGenerator', () => 42);
  return probe;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('bus.stream: routes', () => {
  it('primary -> worker, worker -> primary, worker -> worker (through the primary), primary -> primary', async () => {
    const h = await start(2);
    for (const bus of [h.primary, ...h.workers]) serve(bus);
    const expected = Array.from({ length: 500 }, (_, i) => i);
    expect(await collect(h.primary.stream(1, 'count', { n: 500 }))).toEqual(expected);
    expect(await collect(h.workers[0]!.stream('primary', 'count', { n: 500 }))).toEqual(expected);
    expect(await collect(h.workers[0]!.stream(2, 'count', { n: 500 }))).toEqual(expected);
    expect(await collect(h.workers[1]!.stream('any', 'count', { n: 3 }))).toEqual([0, 1, 2]);
    expect(await collect(h.primary.stream('primary', 'count', { n: 500 }))).toEqual(expected);
    expect(await collect(h.primary.stream(2, 'count', { n: 0 }))).toEqual([]);
  });
});

describe('bus.stream: credit-based flow control', () => {
  it.each([
    ['primary -> worker', 'p', 1],
    ['worker -> worker', 'w', 2],
  ] as const)('%s: the producer runs only as far as the consumer asked, in items', async (_name, from, target) => {
    const h = await start(2);
    const probes = [h.primary, ...h.workers].map(serve);
    const consumer = from === 'p' ? h.primary : h.workers[0]!;
    const it = consumer.stream(target, 'forever', undefined, { windowItems: 8 });
    await it.next();
    await until(() => probes[target]!.produced === 8); // the window, however fast it could go
    await new Promise((r) => setTimeout(r, 30));
    expect(probes[target]!.produced).toBe(8); // and no further
    for (let i = 0; i < 2; i++) await it.next();
    await new Promise((r) => setTimeout(r, 30));
    expect(probes[target]!.produced).toBe(8); // under half a window consumed: no new credit
    await it.next(); // the 4th: half the window consumed, 4 more granted
    await until(() => probes[target]!.produced === 12);
    await new Promise((r) => setTimeout(r, 30));
    expect(probes[target]!.produced).toBe(12);
    await it.return?.();
    await until(() => probes[target]!.finallyRan);
  });

  it('holds the producer to the window in bytes (one item may overshoot it)', async () => {
    const h = await start(1);
    const probe = serve(h.workers[0]!);
    const it = h.primary.stream(1, 'forever', undefined, { windowBytes: 1_000 });
    // The items the window allows, as the codec counts their size: sent while bytes are left.
    let left = 1_000;
    let allowed = 0;
    while (left > 0) left -= encodedSize(encode({ i: allowed++, pad: 'x'.repeat(100) }));
    expect(allowed).toBeGreaterThan(1);
    expect(allowed).toBeLessThan(20);
    await it.next();
    await until(() => probe.produced === allowed);
    await new Promise((r) => setTimeout(r, 30));
    expect(probe.produced).toBe(allowed);
    await it.return?.();
  });
});

describe('bus.stream: ending', () => {
  it('break stops the remote generator: its finally runs and its ctx.signal aborts; nothing stays open', async () => {
    const h = await start(2);
    const probes = [h.primary, ...h.workers].map(serve);
    for (const [consumer, target, probe] of [
      [h.primary, 1, probes[1]],
      [h.workers[0]!, 2, probes[2]],
      [h.workers[1]!, 'primary', probes[0]],
    ] as const) {
      let n = 0;
      for await (const row of consumer.stream(target, 'forever')) {
        expect(row.i).toBe(n);
        if (++n === 10) break;
      }
      await until(() => probe!.finallyRan);
      expect((probe!.aborted as BusError).code).toBe('ABORTED');
    }
    await until(() => h.primary.pendingCount === 0 && h.workers.every((w) => w.pendingCount === 0));
  });

  it('an aborted signal rejects the iteration with ABORTED and stops the generator', async () => {
    const h = await start(2);
    const probe = serve(h.workers[1]!);
    const controller = new AbortController();
    const seen: number[] = [];
    const error = await rejection(
      (async () => {
        for await (const row of h.workers[0]!.stream(2, 'forever', undefined, {
          signal: controller.signal,
        })) {
          seen.push(row.i);
          if (seen.length === 5) controller.abort();
        }
      })(),
    );
    expect(error.code).toBe('ABORTED');
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    await until(() => probe.finallyRan);
    // Already aborted: rejects on the first next(), nothing is opened.
    expect(
      (
        await rejection(
          h.primary.stream(1, 'count', { n: 1 }, { signal: controller.signal }).next(),
        )
      ).code,
    ).toBe('ABORTED');
  });

  it('timeoutMs bounds the wait for each item: TIMEOUT, and the generator is stopped', async () => {
    const h = await start(1);
    let finallyRan = false;
    let aborted: unknown;
    h.workers[0]!.handle('count', async function* ({ n }, ctx) {
      try {
        yield 1;
        await new Promise((r) => setTimeout(r, n));
        ctx.signal.throwIfAborted();
        aborted = ctx.signal.aborted;
        yield 2;
      } finally {
        finallyRan = true;
      }
    });
    const it = h.primary.stream(1, 'count', { n: 300 }, { timeoutMs: 100 });
    expect(await it.next()).toEqual({ done: false, value: 1 });
    const started = performance.now();
    const error = await rejection(it.next());
    expect(error.code).toBe('TIMEOUT');
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    await until(() => finallyRan);
    expect(aborted).toBeUndefined(); // it threw on the aborted signal before yielding 2
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  it('an error mid-stream reaches the consumer as REMOTE after the items sent before it', async () => {
    const h = await start(2);
    serve(h.workers[1]!);
    const seen: number[] = [];
    const error = await rejection(
      (async () => {
        for await (const x of h.workers[0]!.stream(2, 'failAfter', 3)) seen.push(x);
      })(),
    );
    expect(seen).toEqual([0, 1, 2]);
    expect(error.code).toBe('REMOTE');
    expect(error.message).toContain('disk on fire');
    expect((error.cause as { data?: unknown }).data).toEqual({ status: 507 });
  });

  it('validates each item on receipt (BAD_OUTPUT) and stops the producer', async () => {
    const h = await start(1);
    serve(h.workers[0]!);
    const it = h.primary.stream(1, 'wrongItems');
    expect(await it.next()).toEqual({ done: false, value: 1 });
    const error = await rejection(it.next());
    expect(error.code).toBe('BAD_OUTPUT');
    expect(error.issues?.[0]?.path).toEqual([]);
    const notGen = await rejection(h.primary.stream(1, 'notAGenerator').next());
    expect(notGen.code).toBe('BAD_OUTPUT');
    expect(notGen.message).toContain('async iterable');
  });

  it('the target dying rejects the iteration with TARGET_EXITED', async () => {
    const h = await start(2);
    serve(h.workers[1]!);
    const fromPrimary = h.primary.stream(2, 'forever');
    const fromWorker = h.workers[0]!.stream(2, 'forever');
    await fromPrimary.next();
    await fromWorker.next();
    h.kill(1);
    const drain = async (it: AsyncIterator<unknown>) => {
      for (;;) if ((await it.next()).done) return;
    };
    expect((await rejection(drain(fromPrimary))).code).toBe('TARGET_EXITED');
    expect((await rejection(drain(fromWorker))).code).toBe('TARGET_EXITED');
  });

  it('an item that cannot be sent ends the stream with its code, after the items before it', async () => {
    const h = await start(1, { maxPayloadBytes: 1_000 });
    h.workers[0]!.handle('count', async function* ({ n }) {
      yield 1;
      yield n;
      yield 'x'.repeat(2_000) as unknown as number;
    });
    const seen: number[] = [];
    const error = await rejection(
      (async () => {
        for await (const x of h.primary.stream(1, 'count', { n: 2 })) seen.push(x);
      })(),
    );
    expect(seen).toEqual([1, 2]);
    expect(error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it("the consumer's bus closing rejects its iteration with CLOSED and stops the generator", async () => {
    const h = await start(1);
    const probe = serve(h.primary);
    const it = h.workers[0]!.stream('primary', 'forever');
    await it.next();
    const next = rejection(
      (async () => {
        for (;;) if ((await it.next()).done) return;
      })(),
    );
    await h.workers[0]!.close();
    expect((await next).code).toBe('CLOSED');
    await until(() => probe.finallyRan);
  });

  it('a rejection names the line of the loop that awaited it, at once or later (a timeout)', async () => {
    const h = await start(1);
    serve(h.workers[0]!);
    const src = new URL('../../src/', import.meta.url).pathname;
    const firstOutsideSrc = (e: BusError) =>
      e.stack
        ?.split('\n')
        .find(
          (l) =>
            l.trimStart().startsWith('at ') &&
            !l.includes(src) &&
            !l.includes('(node:') &&
            !l.includes('rejection.ts'),
        ) ?? '';
    const now = await rejection(h.primary.stream(9, 'count', { n: 1 }).next());
    expect(firstOutsideSrc(now), now.stack).toContain('stream.test.ts');
    const it = h.primary.stream(1, 'forever', undefined, { timeoutMs: 50, windowItems: 1 });
    await it.next();
    h.pairs[0]!.b.stalled = true; // the worker's items stop arriving
    const later = await rejection(
      (async () => {
        for (;;) await it.next();
      })(),
    );
    h.pairs[0]!.b.resume();
    expect(later.code).toBe('TIMEOUT');
    expect(firstOutsideSrc(later), later.stack).toContain('stream.test.ts');
  });

  it('the consumer dying stops the generators it was reading, in the primary and in another worker', async () => {
    const h = await start(2);
    const probes = [h.primary, ...h.workers].map(serve);
    const fromPrimary = h.workers[0]!.stream('primary', 'forever');
    const fromWorker = h.workers[0]!.stream(2, 'forever');
    await fromPrimary.next();
    await fromWorker.next();
    h.kill(0);
    await until(() => probes[0]!.finallyRan && probes[2]!.finallyRan);
    expect((probes[0]!.aborted as BusError).code).toBe('TARGET_EXITED');
    expect((probes[2]!.aborted as BusError).code).toBe('ABORTED');
  });
});

describe('bus.stream: misuse and hostile peers', () => {
  it('refuses misuse with INVALID_ARGUMENT on the first next(), and call on a stream method', async () => {
    const h = await start(1);
    serve(h.workers[0]!);
    const bus = h.primary;
    // @ts-expect-error: 'add' is not a stream method
    expect((await rejection(bus.stream(1, 'add', { a: 1, b: 2 }).next())).code).toBe(
      'INVALID_ARGUMENT',
    );
    // @ts-expect-error: 'count' streams: use stream
    expect((await rejection(bus.call(1, 'count', { n: 1 }))).message).toContain('use bus.stream');
    // @ts-expect-error: nor callAll
    expect((await rejection(bus.callAll('count', { n: 1 }))).code).toBe('INVALID_ARGUMENT');
    for (const options of [{ windowItems: 0 }, { windowBytes: 1.5 }, { timeoutMs: -1 }]) {
      expect((await rejection(bus.stream(1, 'count', { n: 1 }, options).next())).code).toBe(
        'INVALID_ARGUMENT',
      );
    }
    expect((await rejection(bus.stream(9, 'count', { n: 1 }).next())).code).toBe('NO_TARGET');
    // @ts-expect-error: the input is checked by the producer
    expect((await rejection(bus.stream(1, 'count', { n: 'x' }).next())).code).toBe('BAD_INPUT');
    expect(() =>
      defineContract({ methods: { m: { output: z.number(), stream: z.number() } } }),
    ).toThrow(/both 'output' and 'stream'/);
  });

  it('a worker that sends items it was not granted credit for has its stream stopped (PROTOCOL)', async () => {
    const primary = primaryBus(contract, {}, { connected: () => {} });
    const pair = memoryPair();
    primary.attachLink(1, pair.a);
    const errors: BusError[] = [];
    primary.on('error', (e) => errors.push(e));
    // A hostile worker, no bus: the handshake by hand, then 100 items for a window of 4.
    pair.b.onMessage((raw) => {
      const frames =
        (raw as { k: string; f?: unknown[] }).k === 'b' ? (raw as { f: unknown[] }).f : [raw];
      for (const f of frames as Array<{ k: string; i: number }>) {
        if (f.k === 'welcome') pair.b.send({ $cb: 1, k: 'ready', m: ['count'] }, () => {});
        if (f.k === 'so') {
          for (let n = 0; n < 100; n++) pair.b.send({ $cb: 1, k: 'si', i: f.i, p: n }, () => {});
        }
      }
    });
    pair.b.send({ $cb: 1, k: 'hello', pid: 1 }, () => {});
    await until(() => primary.connectedWorkers().length === 1);
    primary.release();
    const seen: number[] = [];
    const error = await rejection(
      (async () => {
        for await (const x of primary.stream(1, 'count', { n: 1 }, { windowItems: 4 }))
          seen.push(x);
      })(),
    );
    expect(error.code).toBe('PROTOCOL');
    expect(seen.length).toBeLessThanOrEqual(4);
    // A hostile consumer: credit past the largest window stops the primary's generator.
    primary.handle('forever', async function* () {
      for (;;) yield { i: 0, pad: '' };
    });
    const ends: Array<{ e?: { code: string } }> = [];
    pair.b.onMessage((raw) => {
      const frames =
        (raw as { k: string; f?: unknown[] }).k === 'b' ? (raw as { f: unknown[] }).f : [raw];
      for (const f of frames as Array<{ k: string; i: number; e?: { code: string } }>) {
        if (f.k === 'se' && f.i === 77) ends.push(f);
      }
    });
    pair.b.send({ $cb: 1, k: 'so', i: 77, m: 'forever', c: 1, b: 1_000 }, () => {});
    pair.b.send({ $cb: 1, k: 'sc', i: 77, c: 10_000_000, b: 0 }, () => {});
    await until(() => ends.length === 1);
    expect(ends[0]!.e?.code).toBe('PROTOCOL');
    await primary.close();
    expect(primary.pendingCount).toBe(0);
  });
});

describe('bounds', () => {
  it(`refuses a stream past ${MAX_STREAMS_PER_LINK} open over one link with LIMIT_EXCEEDED, also from a peer that skips its bus`, async () => {
    const h = await start(1);
    serve(h.primary);
    const open: Array<AsyncIterator<unknown>> = [];
    const firsts: Array<Promise<unknown>> = [];
    for (let i = 0; i < MAX_STREAMS_PER_LINK; i++) {
      const it = h.workers[0]!.stream('primary', 'count', { n: 1e9 }, { windowItems: 1 });
      open.push(it);
      firsts.push(it.next());
    }
    const refused = await rejection(h.workers[0]!.stream('primary', 'count', { n: 1 }).next());
    expect(refused.code).toBe('LIMIT_EXCEEDED');
    // Every one of them opened and got its first item.
    expect((await Promise.all(firsts)).length).toBe(MAX_STREAMS_PER_LINK);
    // A worker that skips its bus: the primary refuses the one past the bound itself.
    const ends: Array<{ i: number; e?: { code: string } }> = [];
    h.pairs[0]!.b.onMessage((m) => {
      const frames =
        (m as { k: string; f?: unknown[] }).k === 'b' ? (m as { f: unknown[] }).f : [m];
      for (const f of frames as Array<{ k: string; i: number; e?: { code: string } }>) {
        if (f.k === 'se' && f.i === 1e9) ends.push(f);
      }
    });
    const errors: BusError[] = [];
    h.primary.on('error', (e) => errors.push(e));
    h.pairs[0]!.b.send(
      { $cb: 1, k: 'so', i: 1e9, m: 'count', c: 1, b: 100, p: { n: 1 } },
      () => {},
    );
    await until(() => ends.length === 1);
    expect(ends[0]!.e?.code).toBe('LIMIT_EXCEEDED');
    expect(errors.map((e) => e.code)).toEqual(['LIMIT_EXCEEDED']);
    await Promise.all(open.map((it) => it.return?.()));
    await until(() => h.primary.pendingCount === 0 && h.workers[0]!.pendingCount === 0, 10_000);
  }, 30_000);
});

describe('the primary relaying a stream between workers', () => {
  it('stops a producer that sends items it was not granted (PROTOCOL), and reports it', async () => {
    const { workerBus } = await import('../../src/connect.js');
    const primary = primaryBus(contract, {}, { connected: () => {} });
    const errors: BusError[] = [];
    primary.on('error', (e) => errors.push(e));
    const good = memoryPair();
    primary.attachLink(1, good.a);
    const consumer = workerBus(contract, good.b, 1, {}, () => {});
    const raw = memoryPair();
    primary.attachLink(2, raw.a);
    const cancelled: number[] = [];
    raw.b.onMessage((m) => {
      const frames =
        (m as { k: string; f?: unknown[] }).k === 'b' ? (m as { f: unknown[] }).f : [m];
      for (const f of frames as Array<{ k: string; i: number }>) {
        if (f.k === 'welcome') raw.b.send({ $cb: 1, k: 'ready', m: ['count'] }, () => {});
        if (f.k === 'so')
          for (let n = 0; n < 100; n++) raw.b.send({ $cb: 1, k: 'si', i: f.i, p: n }, () => {});
        if (f.k === 'sx') cancelled.push(f.i);
      }
    });
    raw.b.send({ $cb: 1, k: 'hello', pid: 2 }, () => {});
    await until(() => primary.connectedWorkers().length === 2);
    primary.release();
    const seen: number[] = [];
    const error = await rejection(
      (async () => {
        for await (const x of consumer.stream(2, 'count', { n: 1 }, { windowItems: 4 }))
          seen.push(x);
      })(),
    );
    expect(error.code).toBe('PROTOCOL');
    expect(seen.length).toBeLessThanOrEqual(4);
    expect(errors.some((e) => e.code === 'PROTOCOL' && e.message.includes('not granted'))).toBe(
      true,
    );
    await until(() => cancelled.length === 1); // the relay told the hostile producer to stop
    await consumer.close();
    await primary.close();
    expect(primary.pendingCount + consumer.pendingCount).toBe(0);
  });
});

describe('the primary relaying a stream between workers (a hostile consumer)', () => {
  it('stops the stream of a consumer that grants credit past the largest window (PROTOCOL)', async () => {
    const { workerBus } = await import('../../src/connect.js');
    const primary = primaryBus(contract, {}, { connected: () => {} });
    const errors: BusError[] = [];
    primary.on('error', (e) => errors.push(e));
    const raw = memoryPair();
    primary.attachLink(1, raw.a);
    const good = memoryPair();
    primary.attachLink(2, good.a);
    const producer = workerBus(contract, good.b, 2, {}, () => {});
    const probe = serve(producer);
    const ends: Array<{ e?: { code: string } }> = [];
    raw.b.onMessage((m) => {
      const frames =
        (m as { k: string; f?: unknown[] }).k === 'b' ? (m as { f: unknown[] }).f : [m];
      for (const f of frames as Array<{ k: string; i: number; e?: { code: string } }>) {
        if (f.k === 'welcome') raw.b.send({ $cb: 1, k: 'ready', m: [] }, () => {});
        if (f.k === 'se' && f.i === 5) ends.push(f);
      }
    });
    raw.b.send({ $cb: 1, k: 'hello', pid: 1 }, () => {});
    await until(() => primary.connectedWorkers().length === 2);
    primary.release();
    raw.b.send({ $cb: 1, k: 'so', i: 5, m: 'forever', t: 2, c: 1, b: 1_000 }, () => {});
    await until(() => probe.produced === 1);
    raw.b.send({ $cb: 1, k: 'sc', i: 5, c: 10_000_000, b: 0 }, () => {});
    await until(() => ends.length === 1 && probe.finallyRan);
    expect(ends[0]!.e?.code).toBe('PROTOCOL');
    expect(errors.some((e) => e.code === 'PROTOCOL' && e.message.includes('largest window'))).toBe(
      true,
    );
    await producer.close();
    await primary.close();
    expect(primary.pendingCount + producer.pendingCount).toBe(0);
  });
});

describe('startup', () => {
  it("a worker's first stream reaches the handler the primary registers right after startup", async () => {
    const { workerBus } = await import('../../src/connect.js');
    let ready!: () => void;
    const isReady = new Promise<void>((r) => {
      ready = r;
    });
    const primary = primaryBus(contract, {}, { connected: () => ready() });
    const pair = memoryPair();
    primary.attachLink(1, pair.a);
    const worker = workerBus(contract, pair.b, 1, {}, () => {});
    await isReady;
    const items = collect(worker.stream('primary', 'count', { n: 3 }));
    await new Promise((r) => setTimeout(r, 20)); // it has reached the primary, which holds it
    primary.handle('count', async function* ({ n }) {
      for (let i = 0; i < n; i++) yield i;
    });
    primary.release(); // as startCluster does once every worker is ready
    expect(await items).toEqual([0, 1, 2]);
    await worker.close();
    await primary.close();
  });
});

describe('stream methods in the contract fingerprint', () => {
  it('tells two contracts apart by their stream schema', async () => {
    const { fingerprint } = await import('../../src/protocol/fingerprint.js');
    const a = defineContract({ methods: { rows: { stream: z.number() } } });
    const b = defineContract({ methods: { rows: { stream: z.string() } } });
    const c = defineContract({ methods: { rows: {} } });
    expect(fingerprint(a).hash).not.toBe(fingerprint(b).hash);
    expect(fingerprint(a).hash).not.toBe(fingerprint(c).hash);
  });
});
