/**
 * Bad input: arbitrary objects, truncated envelopes, wrong types in every field, unknown kinds,
 * huge ids, deep nesting and prototype-polluting payloads never throw out of the bus; each frame
 * with our marker that cannot be used is reported on the `error` event with a reason.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type BusError, defineContract } from '../../src/index.js';
import { Kind, MARKER } from '../../src/protocol/envelope.js';
import { type ControlFrame, Peer } from '../../src/protocol/peer.js';
import { memoryPair } from '../../src/transport/memory.js';
import { forgeRequest, type Harness, harness, rawChannel, until } from './helpers.js';

const contract = defineContract({
  methods: {
    echo: { input: z.unknown(), output: z.unknown() },
    obj: { input: z.record(z.string(), z.unknown()), output: z.record(z.string(), z.unknown()) },
  },
  events: { tick: z.object({ n: z.number() }) },
});

const KINDS = [...Object.values(Kind), 'nope', '', 7, null] as const;

/** Frames that carry our marker but may have anything in any field. */
const markedFrame = fc.record(
  {
    [MARKER]: fc.oneof(fc.constant(1), fc.anything()),
    k: fc.constantFrom(...KINDS),
    i: fc.oneof(
      fc.nat(),
      fc.integer(),
      fc.double(),
      fc.constant(Number.MAX_SAFE_INTEGER + 2),
      fc.string(),
      fc.constant(2 ** 70),
    ),
    m: fc.oneof(fc.string(), fc.anything(), fc.array(fc.string())),
    t: fc.oneof(fc.constant('any'), fc.constant('all'), fc.nat(), fc.anything()),
    s: fc.oneof(fc.nat(), fc.anything()),
    p: fc.anything(),
    q: fc.anything(),
    e: fc.anything(),
    a: fc.anything(),
    f: fc.anything(),
    w: fc.anything(),
    pid: fc.anything(),
  },
  { requiredKeys: [MARKER] },
);

const deep = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'large', maxDepth: 200 },
    fc.constant(1),
    fc.record({ x: tie('node') }),
    fc.tuple(tie('node')),
  ),
})).node;

let h: Harness<typeof contract> | undefined;
afterEach(async () => {
  if (h !== undefined) expect(await h.close()).toBe(0);
  h = undefined;
});

describe('the decoder never throws', () => {
  it('for arbitrary values, marked frames, batches and deep nesting fed to a peer', () => {
    const pair = memoryPair();
    const reasons: string[] = [];
    const peer = new Peer(pair.a, 'fuzz', {
      request: (p, frame) => {
        p.fail(frame.i, {
          toJSON: () => ({ code: 'PROTOCOL', message: 'x' }),
        } as unknown as BusError);
      },
      event: () => {},
      control: (_p, _f: ControlFrame) => {},
      invalid: (_p, reason) => reasons.push(reason),
      closed: () => {},
    });
    const receive = (raw: unknown) => peer.receive(raw);
    fc.assert(
      fc.property(fc.oneof(fc.anything(), markedFrame, deep), (raw) => {
        const before = reasons.length;
        expect(() => receive(raw)).not.toThrow();
        // A frame without our marker is someone else's: never reported.
        const marked = typeof raw === 'object' && raw !== null && Object.hasOwn(raw, MARKER);
        if (!marked) expect(reasons.length).toBe(before);
      }),
      { numRuns: 2_000 },
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.anything(), markedFrame), { maxLength: 20 }), (inner) => {
        expect(() => receive({ [MARKER]: 1, k: Kind.batch, f: inner })).not.toThrow();
      }),
      { numRuns: 500 },
    );
    expect(reasons.length).toBeGreaterThan(100);
    expect(reasons.every((r) => typeof r === 'string' && r.length > 0)).toBe(true);
    pair.cut();
  });

  it('for garbage sent to a running bus, which reports it and keeps working', async () => {
    h = await harness(contract, 1);
    const { primary, workers, pairs } = h;
    workers[0]!.handle('echo', (v) => v);
    const errors: BusError[] = [];
    primary.on('error', (e) => errors.push(e));
    const workerEnd = pairs[0]!.b;
    // A well-formed 'bye' is not garbage: it legitimately closes that worker's bus.
    const samples = fc
      .sample(fc.oneof(markedFrame, fc.anything()), { numRuns: 300, seed: 42 })
      .filter((raw) => (raw as { k?: unknown } | null)?.k !== Kind.bye);
    let marked = 0;
    for (const raw of samples) {
      if (typeof raw === 'object' && raw !== null && Object.hasOwn(raw, MARKER)) marked++;
      try {
        workerEnd.send(raw, () => {});
      } catch {
        // JSON cannot carry it (a BigInt, a cycle): the channel itself would refuse it too.
      }
    }
    expect(await primary.call(1, 'echo', { still: 'works' })).toEqual({ still: 'works' });
    // Reports are aggregated per code (the first 10 a second, then one summary with the count):
    // every one is accounted for.
    const reports = () => errors.reduce((n, e) => n + ((e.data?.suppressed as number) ?? 1), 0);
    await until(() => reports() > marked / 3, 5_000);
    expect(errors.every((e) => typeof e.code === 'string' && e.message.length > 0)).toBe(true);
  });
});

describe('hostile payloads', () => {
  it('leave Object.prototype untouched: __proto__ keys, constructor.prototype, crafted superjson meta', async () => {
    h = await harness(contract, 1);
    const { primary, workers, pairs } = h;
    workers[0]!.handle('echo', (v) => v);
    workers[0]!.handle('obj', (v) => v);
    const errors: BusError[] = [];
    workers[0]!.on('error', (e) => errors.push(e));

    const viaJson = JSON.parse(
      '{"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}}',
    );
    const back = await primary.call(1, 'echo', viaJson);
    expect(Object.hasOwn(back as object, '__proto__')).toBe(true); // kept as data, not as a prototype
    await primary.call(1, 'obj', viaJson).catch(() => undefined);

    // superjson meta crafted to walk into prototypes, sent as raw frames to the worker.
    const primaryEnd = pairs[0]!.a;
    const crafted = [
      { json: {}, meta: { values: { '__proto__.polluted': ['Date'] } } },
      { json: { a: 1 }, meta: { referentialEqualities: { a: ['__proto__.polluted'] } } },
      {
        json: { a: {} },
        meta: { referentialEqualities: { a: ['constructor.prototype.polluted'] } },
      },
      { json: [1], meta: { values: { '0': [['custom', 'nope']] } } },
    ];
    let id = 1_000_000;
    for (const c of crafted) {
      primaryEnd.send(
        { [MARKER]: 1, k: Kind.request, i: id++, m: 'echo', p: c.json, q: c.meta },
        () => {},
      );
      primaryEnd.send(
        { [MARKER]: 1, k: Kind.event, m: 'tick', s: 0, p: c.json, q: c.meta },
        () => {},
      );
    }
    workers[0]!.subscribe('tick', () => {});
    await new Promise((r) => setTimeout(r, 50));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(await primary.call(1, 'echo', 'alive')).toBe('alive');
  });
});

describe('the trust boundary of the system protocols (regressions: a worker drove other workers)', () => {
  it("refuses a worker's $… request addressed to another worker, whatever the target, with FORBIDDEN; nothing reaches the target", async () => {
    h = await harness(contract, 2);
    const { primary, workers, pairs } = h;
    const errors: BusError[] = [];
    primary.on('error', (e) => errors.push(e));
    let reached = 0;
    workers[1]!.systemHandle('$probe', () => ++reached);
    const raw = rawChannel(pairs[0]!);
    for (const fields of [{ t: 2 }, { t: 'any' }, { t: 'all' }, { n: 1 }]) {
      const answer = await forgeRequest(raw, '$probe', {}, 5_000, fields);
      expect(answer.ok, JSON.stringify(fields)).toBe(false);
      if (!answer.ok) expect(answer.error.code).toBe('FORBIDDEN');
    }
    expect(reached).toBe(0);
    expect(errors.filter((e) => e.code === 'FORBIDDEN')).toHaveLength(4);
    // The primary's own call still reaches it: the protocols are the primary's.
    expect(await primary.systemCall('$probe', 2, {})).toBe(1);
  });

  it("a worker refuses a system request that claims to come from another worker (s: another worker's id)", async () => {
    h = await harness(contract, 1);
    const { workers, pairs } = h;
    const errors: BusError[] = [];
    workers[0]!.on('error', (e) => errors.push(e));
    let reached = 0;
    workers[0]!.systemHandle('$probe', () => ++reached);
    // Written on the primary's end of the link, as a hub that forwarded it would.
    pairs[0]!.a.send({ [MARKER]: 1, k: Kind.request, i: 77, m: '$probe', s: 5, p: {} }, () => {});
    pairs[0]!.a.send({ [MARKER]: 1, k: Kind.event, m: '$probe', s: 5, p: {} }, () => {});
    await until(() => errors.length >= 2);
    expect(reached).toBe(0);
    expect(errors.map((e) => e.code)).toEqual(['FORBIDDEN', 'FORBIDDEN']);
  });

  it('refuses requests and events sent before the hello (a link with no bus behind it)', async () => {
    h = await harness(contract, 1);
    const { primary } = h;
    const errors: BusError[] = [];
    primary.on('error', (e) => errors.push(e));
    const pair = memoryPair();
    primary.attachLink(9, pair.a);
    const answer = await forgeRequest(rawChannel(pair), '$state.get', { s: 'x', k: 'y' });
    expect(answer.ok).toBe(false);
    if (!answer.ok) expect(answer.error.message).toMatch(/before its hello, or after its bye/);
    pair.cut();
  });
});
