/**
 * What a store keeps: its schema's output, never the raw input; every value it accepts survives
 * a snapshot and a restart as it was (`__proto__`, `constructor` and `prototype` keys, Date, Map,
 * Set and BigInt included), and nothing reaches Object.prototype; a value it could not give back
 * or persist is refused when written, and nothing changes.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BusError, defineContract } from '../../src/index.js';
import { type PrimaryBus, primaryBus } from '../../src/primary-bus.js';
import { Kind, MARKER } from '../../src/protocol/envelope.js';
import { StoreHost } from '../../src/state/host.js';
import { decodeSnapshot } from '../../src/state/persist.js';
import { Op } from '../../src/state/protocol.js';
import { type Harness, harness, rejection, until } from './helpers.js';

/** `levels` arrays, one inside the other, around 0. */
const nest = (levels: number): unknown => {
  let v: unknown = 0;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
};

const record = z.record(z.string(), z.unknown());
const contract = defineContract({
  stores: {
    users: z.object({ name: z.string(), role: z.string().default('user') }),
    anything: z.unknown(),
    records: record,
    /** Turns 'deep' into 200 levels of arrays: deeper than the bus can send back. */
    deep: z.unknown().transform((v) => (v === 'deep' ? nest(200) : v)),
    /** Turns 'fn' into a function: nothing can carry it. */
    fns: z.unknown().transform((v) => (v === 'fn' ? () => 1 : v)),
    /** A transform to another type: its output fails it, so no read could pass. */
    lengths: z.string().transform((s) => s.length),
  },
});
type C = typeof contract;

let dir: string;
let file: string;
let h: Harness<C> | undefined;
const hosts: StoreHost[] = [];
const buses: PrimaryBus<C>[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterbus-values-'));
  file = join(dir, 'stores.snapshot');
});

afterEach(async () => {
  for (const host of hosts.splice(0)) await host.close();
  for (const bus of buses.splice(0)) await bus.close();
  if (h !== undefined) expect(await h.close()).toBe(0);
  h = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** A primary bus alone, with a host persisting to `file` (written on close only). */
async function primaryWithHost(): Promise<{ bus: PrimaryBus<C>; host: StoreHost }> {
  const bus = primaryBus(contract, {}, { connected: () => {} });
  buses.push(bus);
  const host = await StoreHost.open(bus, { persist: { file, intervalMs: 60_000 } });
  hosts.push(host);
  return { bus, host };
}

/** Closes `host` (writing its last snapshot) and its bus. */
async function closeHost(bus: PrimaryBus<C>, host: StoreHost): Promise<void> {
  hosts.splice(hosts.indexOf(host), 1);
  buses.splice(buses.indexOf(bus), 1);
  await host.close();
  await bus.close();
}

/** The values the snapshot at `file` holds for `store`, by key. */
function onDisk(store: string): Map<string, unknown> {
  const data = decodeSnapshot(readFileSync(file, 'utf8'), file);
  return new Map((data.stores[store]?.entries ?? []).map(([key, value]) => [key, value]));
}

describe('the value a store keeps', () => {
  it("keeps the schema's output, not the raw input, for writes from a worker and from the primary", async () => {
    h = await harness(contract, 1);
    const host = await StoreHost.open(h.primary, { persist: { file, intervalMs: 60_000 } });
    hosts.push(host);
    const body = '{"name":"alice","__proto__":{"x":1}}';
    await h.workers[0]!.store('users').set('w', JSON.parse(body));
    await h.primary.store('users').set('p', JSON.parse(body.replace('alice', 'bob')));
    hosts.splice(0);
    await host.close();

    const users = onDisk('users');
    // Stripped of the key the schema does not know, and with its default filled in.
    expect(users.get('w')).toStrictEqual({ name: 'alice', role: 'user' });
    expect(users.get('p')).toStrictEqual({ name: 'bob', role: 'user' });
    expect(Object.hasOwn(users.get('w') as object, '__proto__')).toBe(false);
  });

  it('refuses a value it could not give back, with a code naming why, and changes nothing', async () => {
    const { bus } = await primaryWithHost();
    const cases = [
      { store: 'deep', value: 'deep', code: 'PAYLOAD_TOO_DEEP', text: /maxDepth/ },
      { store: 'fns', value: 'fn', code: 'INVALID_ARGUMENT', text: /cannot keep/ },
      { store: 'lengths', value: 'abc', code: 'BAD_INPUT', text: /own output/ },
    ] as const;
    for (const { store, value, code, text } of cases) {
      const s = bus.store(store) as unknown as {
        set(k: string, v: unknown): Promise<number>;
        entry(k: string): Promise<unknown>;
      };
      const before = await s.entry('k');
      const error = await rejection(s.set('k', value));
      expect(error.code).toBe(code);
      expect(error.message).toContain(`store '${store}' key 'k'`);
      expect(error.message).toMatch(text);
      expect(await s.entry('k')).toEqual(before);
    }
    expect((await rejection(bus.store('deep').set('k', 'deep'))).data).toEqual({
      limit: 'maxDepth',
      value: 128,
    });
    // No revision was spent by the refusals.
    expect(await bus.store('deep').set('k', 1)).toBe(1);
  });

  it('refuses, from a hostile worker, a value with a constructor key next to a Date, and the snapshot still writes', async () => {
    h = await harness(contract, 1);
    const host = await StoreHost.open(h.primary, { persist: { file, intervalMs: 60_000 } });
    hosts.push(host);
    await h.primary.store('anything').set('before', 1);
    // A raw request no honest sender makes (superjson refuses to encode it): its decoded value
    // is an object with own `constructor` and `prototype` keys next to a Date.
    const link = h.pairs[0]!.b;
    const answers: unknown[] = [];
    const off = link.onMessage((m) => answers.push(m));
    const id = 1_000_000;
    link.send(
      {
        [MARKER]: 1,
        k: Kind.request,
        i: id,
        m: Op.set,
        p: {
          s: 'anything',
          k: 'evil',
          v: { constructor: 1, prototype: 2, d: '2024-01-01T00:00:00.000Z' },
        },
        q: { values: { 'v.d': ['Date'] } },
      },
      () => {},
    );
    const answer = () =>
      answers
        .flatMap((m) => {
          const f = m as { k?: string; f?: unknown[] };
          return f.k === Kind.batch ? (f.f ?? []) : [f];
        })
        .find((f) => (f as { i?: number }).i === id) as
        | { k: string; e?: { code: string; message: string } }
        | undefined;
    await until(() => answer() !== undefined);
    off();
    expect(answer()?.k).toBe(Kind.error);
    expect(answer()?.e?.code).toBe('INVALID_ARGUMENT');
    expect(answer()?.e?.message).toContain("store 'anything' key 'evil'");
    expect(await h.primary.store('anything').get('evil')).toBeUndefined();
    hosts.splice(0);
    await host.close(); // the last snapshot writes: nothing unencodable got in
    expect(onDisk('anything').get('before')).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------

/** Keys that are also names on Object.prototype, or that walk into it. */
const KEY = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'polluted',
  ),
  fc.string({ maxLength: 6 }),
);

/**
 * Values nested up to 4 levels: arrays and objects (keys from KEY) of `leaves`, and, `withSets`,
 * Maps and Sets too.
 */
function values(leaves: fc.Arbitrary<unknown>[], withSets: boolean): fc.Arbitrary<unknown> {
  return fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', maxDepth: 4 },
      ...leaves,
      tie('array'),
      tie('object'),
      ...(withSets ? [tie('map'), tie('set')] : []),
    ),
    array: fc.array(tie('value'), { maxLength: 4 }),
    // Null-prototype objects travel as plain ones (the wire's JSON): not generated.
    object: fc.dictionary(KEY, tie('value'), { maxKeys: 4, noNullPrototype: true }),
    map: fc
      .array(fc.tuple(fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), tie('value')), {
        maxLength: 3,
      })
      .map((pairs) => new Map(pairs)),
    set: fc
      .uniqueArray(fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), { maxLength: 3 })
      .map((items) => new Set(items)),
  })).value;
}

const JSON_LEAVES = [
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0)),
  fc.boolean(),
  fc.constant(null),
];
/**
 * Every kind of value the wire carries (JSON, undefined, -0, NaN, Infinity, BigInt, Date, Map,
 * Set), and plain JSON alone, whose objects the wire carries with any key (`__proto__` too).
 */
const VALUE = fc.oneof(
  values(
    [
      ...JSON_LEAVES,
      fc.double(),
      fc.constant(undefined),
      fc.bigInt(),
      fc.date({ noInvalidDate: true }),
    ],
    true,
  ),
  values(JSON_LEAVES, false),
);

const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype).sort();

/**
 * An exact description of a value, as nested arrays of strings, for comparing two values: every
 * own key (`__proto__` too) and its order, every type (Map, Set, Date, BigInt, -0, undefined) and
 * each object's prototype. (`toStrictEqual` cannot compare objects that have an own
 * `constructor` key: it takes that key for their class.)
 */
function described(value: unknown): unknown {
  switch (typeof value) {
    case 'undefined':
      return ['undefined'];
    case 'number':
      return ['number', Object.is(value, -0) ? '-0' : String(value)];
    case 'bigint':
      return ['bigint', String(value)];
    case 'string':
    case 'boolean':
      return [typeof value, value];
    case 'object': {
      if (value === null) return ['null'];
      if (value instanceof Date) return ['Date', value.getTime()];
      if (value instanceof Map)
        return ['Map', [...value].map(([k, v]) => [described(k), described(v)])];
      if (value instanceof Set) return ['Set', [...value].map(described)];
      if (Array.isArray(value)) return ['Array', Object.keys(value), value.map(described)];
      const proto = Object.getPrototypeOf(value);
      return [
        proto === Object.prototype ? 'Object' : proto === null ? 'null-prototype' : 'other',
        Object.keys(value).map((k) => [k, described((value as Record<string, unknown>)[k])]),
      ];
    }
    default:
      return ['unexpected', typeof value];
  }
}

/** Writes `values` to `store` (keys k0, k1…); returns what it holds then, by key. */
async function writeAll(
  bus: PrimaryBus<C>,
  store: 'anything' | 'records',
  values: readonly unknown[],
): Promise<Map<string, unknown>> {
  const s = bus.store(store) as unknown as {
    set(k: string, v: unknown): Promise<number>;
    entry(k: string): Promise<unknown>;
  };
  const kept = new Map<string, unknown>();
  for (const [i, value] of values.entries()) {
    const key = `k${i}`;
    try {
      await s.set(key, value);
    } catch (error) {
      // Refused (by the sender's codec or by the host): a BusError, and nothing written.
      expect(error).toBeInstanceOf(BusError);
      expect(await s.entry(key)).toBeUndefined();
      continue;
    }
    kept.set(key, await s.entry(key));
  }
  return kept;
}

async function readAll(bus: PrimaryBus<C>, store: 'anything' | 'records', keys: Iterable<string>) {
  const out = new Map<string, unknown>();
  for (const key of keys) out.set(key, await bus.store(store).entry(key));
  return out;
}

describe('a snapshot restores every value a store accepts', () => {
  it('faithfully, for z.unknown() and z.record() stores, and never pollutes Object.prototype', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(VALUE, { minLength: 1, maxLength: 4 }),
        fc.array(fc.dictionary(KEY, VALUE, { maxKeys: 4, noNullPrototype: true }), {
          minLength: 1,
          maxLength: 3,
        }),
        async (values, records) => {
          await rm(file, { force: true });
          const first = await primaryWithHost();
          const anything = await writeAll(first.bus, 'anything', values);
          const recorded = await writeAll(first.bus, 'records', records);
          await closeHost(first.bus, first.host);

          const second = await primaryWithHost();
          const restored = await readAll(second.bus, 'anything', anything.keys());
          const restoredRecords = await readAll(second.bus, 'records', recorded.keys());
          expect(described([...restored])).toEqual(described([...anything]));
          expect(described([...restoredRecords])).toEqual(described([...recorded]));
          // What was kept is what was written (z.unknown), or the schema's output (z.record).
          for (const [key, entry] of anything) {
            const written = values[Number(key.slice(1))];
            expect(described((entry as { value: unknown }).value)).toEqual(described(written));
          }
          for (const [key, entry] of recorded) {
            const output = record.parse(records[Number(key.slice(1))]);
            expect(described((entry as { value: unknown }).value)).toEqual(described(output));
          }
          await closeHost(second.bus, second.host);
          expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_NAMES);
          expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        },
      ),
      { numRuns: 200 },
    );
  }, 120_000);
});
