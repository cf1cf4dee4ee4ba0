/**
 * Values arrive as they left, through every path: primary -> worker, worker -> worker,
 * worker -> primary and callAll. Rich values (Date, Map, Set, BigInt, RegExp, undefined inside
 * objects, special numbers) go through superjson; plain JSON takes the fast path.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type App, start, stop, until, workerIds } from './helpers.js';

let app: App;
let w1: number;
let w2: number;

beforeAll(async () => {
  app = await start({ workers: 2 });
  [w1, w2] = workerIds(app) as [number, number];
  app.bus.handle('echo', (value) => value);
});

afterEach(async () => {
  expect(app.bus.pendingCount).toBe(0);
  const pending = await app.bus.callAll('pending');
  expect(pending.map((r) => (r.status === 'fulfilled' ? r.value : r.error.code))).toEqual([0, 0]);
});

afterAll(() => stop(app));

/** A fresh value with every type superjson carries and JSON does not. */
function rich() {
  return {
    date: new Date('2024-02-29T12:34:56.789Z'),
    map: new Map<unknown, unknown>([
      ['a', 1],
      [2, { when: new Date(0) }],
    ]),
    set: new Set<unknown>([1, 'two', 3n]),
    big: 12_345_678_901_234_567_890n,
    negative: -1n,
    nested: { u: undefined, deep: { list: [undefined, null, 1], re: /x/ } },
    re: /a+b?c/gi,
    special: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0],
    text: 'héllo ✓ \u0000 "quoted"',
  };
}

/** Checks what came back against {@link rich}, type by type. */
function expectRich(value: unknown): void {
  const expected = rich();
  expect(value).toStrictEqual(expected);
  const v = value as ReturnType<typeof rich>;
  expect(v.date).toBeInstanceOf(Date);
  expect(v.date.getTime()).toBe(expected.date.getTime());
  expect(v.map).toBeInstanceOf(Map);
  expect([...v.map.keys()]).toEqual(['a', 2]);
  expect((v.map.get(2) as { when: Date }).when).toBeInstanceOf(Date);
  expect(v.set).toBeInstanceOf(Set);
  expect(v.set.has(3n)).toBe(true);
  expect(typeof v.big).toBe('bigint');
  expect(v.big).toBe(12_345_678_901_234_567_890n);
  expect(Object.hasOwn(v.nested, 'u')).toBe(true);
  expect(v.nested.u).toBeUndefined();
  expect(v.nested.deep.list).toHaveLength(3);
  expect(v.nested.deep.list[0]).toBeUndefined();
  expect(v.nested.deep.list[1]).toBeNull();
  expect(v.re).toBeInstanceOf(RegExp);
  expect(v.re.source).toBe('a+b?c');
  expect(v.re.flags).toBe('gi');
  expect(Number.isNaN(v.special[0])).toBe(true);
  expect(v.special.slice(1, 3)).toEqual([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  expect(Object.is(v.special[3], -0)).toBe(true);
  expect(v.text).toBe(expected.text);
}

describe('rich values (superjson)', () => {
  it('round-trip primary -> worker -> primary through echo', async () => {
    expectRich(await app.bus.call(w1, 'echo', rich()));
  });

  it('round-trip worker -> worker, through the primary, and back', async () => {
    const outcome = await app.bus.call(w1, 'relay', { target: w2, method: 'echo', input: rich() });
    if (!outcome.ok) throw new Error(`relay failed: ${outcome.code} ${outcome.message}`);
    expectRich(outcome.value);
  });

  it('round-trip worker -> primary', async () => {
    const outcome = await app.bus.call(w2, 'relay', {
      target: 'primary',
      method: 'echo',
      input: rich(),
    });
    if (!outcome.ok) throw new Error(`relay failed: ${outcome.code} ${outcome.message}`);
    expectRich(outcome.value);
  });

  it('round-trip through callAll, one value per worker', async () => {
    const results = await app.bus.callAll('echo', rich());
    expect(results.map((r) => r.workerId)).toEqual([w1, w2]);
    for (const r of results) {
      if (r.status !== 'fulfilled') throw new Error(`worker ${r.workerId}: ${r.error.message}`);
      expectRich(r.value);
    }
  });

  it('carries a top-level undefined, BigInt and Date', async () => {
    expect(await app.bus.call(w1, 'echo', undefined)).toBeUndefined();
    expect(await app.bus.call(w1, 'echo', 7n)).toBe(7n);
    const d = new Date(86_400_000);
    expect(await app.bus.call(w2, 'echo', d)).toStrictEqual(d);
  });
});

describe('plain JSON', () => {
  it('round-trips exactly, keys and nesting included', async () => {
    const value = {
      s: '',
      n: 1.5e300,
      neg: -42,
      t: true,
      f: false,
      z: null,
      list: [[], {}, [1, [2, [3]]], { a: { b: { c: 'deep' } } }],
      unicode: '日本語 🎉',
    };
    expect(await app.bus.call(w1, 'echo', value)).toStrictEqual(value);
    const outcome = await app.bus.call(w1, 'relay', { target: w2, method: 'echo', input: value });
    expect(outcome).toMatchObject({ ok: true, value });
  });

  it("keeps an own '__proto__' key as data, never as the prototype", async () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}') as Record<
      string,
      unknown
    >;
    const back = (await app.bus.call(w1, 'echo', value)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.hasOwn(back, '__proto__')).toBe(true);
    expect(back.x).toBe(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('is a snapshot taken when the call is issued', async () => {
    const value = { n: 1, list: [1] };
    const call = app.bus.call(w1, 'echo', value);
    value.n = 2;
    value.list.push(2);
    expect(await call).toStrictEqual({ n: 1, list: [1] });
  });

  it('publishes a snapshot taken when publish is called', async () => {
    const payload = { key: `snapshot-${process.hrtime.bigint()}` };
    const sent = payload.key;
    const local: string[] = [];
    const off = app.bus.subscribe('cache.invalidate', ({ key }) => {
      local.push(key);
    });
    try {
      app.bus.publish('cache.invalidate', payload);
      payload.key = 'mutated';
      await until(
        () => local,
        (keys) => keys.length > 0,
        'the local subscriber',
      );
      expect(local).toEqual([sent]);
      for (const id of [w1, w2]) {
        await until(
          () => app.bus.call(id, 'receivedAlways'),
          (keys) => keys.includes(sent),
          `worker ${id} receives the event`,
        );
        expect(await app.bus.call(id, 'receivedAlways')).not.toContain('mutated');
      }
    } finally {
      off();
    }
  });
});
