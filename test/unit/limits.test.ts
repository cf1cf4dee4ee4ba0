/** maxPayloadBytes and maxDepth: refused by the sender (PAYLOAD_TOO_LARGE, PAYLOAD_TOO_DEEP), before the channel. */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BusError, defineContract } from '../../src/index.js';
import { type Harness, harness } from './helpers.js';

const contract = defineContract({
  methods: {
    echo: { input: z.unknown(), output: z.unknown() },
    big: { input: z.number(), output: z.string() },
  },
  events: { blob: z.object({ s: z.string() }) },
});

let h: Harness<typeof contract> | undefined;
afterEach(async () => {
  if (h !== undefined) expect(await h.close()).toBe(0);
  h = undefined;
});

describe('maxPayloadBytes', () => {
  it('refuses a large input at the caller, and a large result at the handler', async () => {
    h = await harness(contract, 1, { maxPayloadBytes: 1_000 });
    const { primary, workers } = h;
    let calls = 0;
    workers[0]!.handle('echo', (v) => {
      calls++;
      return v;
    });
    workers[0]!.handle('big', (n) => 'x'.repeat(n));

    const tooBig = await primary
      .call(1, 'echo', { s: 'x'.repeat(2_000) })
      .catch((e: BusError) => e);
    expect(tooBig).toBeInstanceOf(BusError);
    expect((tooBig as BusError).code).toBe('PAYLOAD_TOO_LARGE');
    expect(calls).toBe(0); // never reached the worker
    // Nested values and superjson payloads are measured too.
    const nested = { a: [{ b: 'x'.repeat(600) }, { c: 'y'.repeat(600) }] };
    expect(await primary.call(1, 'echo', nested).catch((e: BusError) => e.code)).toBe(
      'PAYLOAD_TOO_LARGE',
    );
    const dated = { d: new Date(0), s: 'x'.repeat(1_200) };
    expect(await primary.call(1, 'echo', dated).catch((e: BusError) => e.code)).toBe(
      'PAYLOAD_TOO_LARGE',
    );

    expect(await primary.call(1, 'echo', { s: 'small' })).toEqual({ s: 'small' });
    expect(await primary.call(1, 'big', 10)).toBe('x'.repeat(10));
    const result = await primary.call(1, 'big', 5_000).catch((e: BusError) => e);
    expect((result as BusError).code).toBe('PAYLOAD_TOO_LARGE');
    expect((result as BusError).message).toContain("handler 'big'");
  });

  it('refuses a large event payload synchronously at the publisher', async () => {
    h = await harness(contract, 1, { maxPayloadBytes: 1_000 });
    expect(() => h!.workers[0]!.publish('blob', { s: 'x'.repeat(5_000) })).toThrow(
      expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE' }),
    );
  });

  it('rejects a bad maxPayloadBytes option', async () => {
    await expect(harness(contract, 1, { maxPayloadBytes: 0 })).rejects.toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

const deep = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

describe('maxDepth', () => {
  const deepContract = defineContract({
    methods: {
      echo: { input: z.unknown(), output: z.unknown() },
      nest: { input: z.number(), output: z.unknown() },
    },
    events: { doc: z.unknown() },
  });
  let d: Harness<typeof deepContract> | undefined;
  afterEach(async () => {
    if (d !== undefined) expect(await d.close()).toBe(0);
    d = undefined;
  });

  it('refuses a deep input at the caller, a deep result at the handler and a deep event at the publisher, with PAYLOAD_TOO_DEEP', async () => {
    d = await harness(deepContract, 1, { maxDepth: 16 });
    const { primary, workers } = d;
    let calls = 0;
    workers[0]!.handle('echo', (v) => {
      calls++;
      return v;
    });
    workers[0]!.handle('nest', (n) => deep(n));
    expect(await primary.call(1, 'echo', deep(16))).toEqual(deep(16));
    const input = await primary.call(1, 'echo', deep(17)).catch((e: BusError) => e);
    expect(input).toBeInstanceOf(BusError);
    expect((input as BusError).code).toBe('PAYLOAD_TOO_DEEP');
    expect(calls).toBe(1); // the deep one never reached the worker
    // superjson payloads too (a Map inside), and a value too deep for superjson's own recursion.
    const withMap = await primary
      .call(1, 'echo', { m: new Map([[1, deep(20)]]) })
      .catch((e: BusError) => e.code);
    expect(withMap).toBe('PAYLOAD_TOO_DEEP');
    const result = await primary.call(1, 'nest', 40).catch((e: BusError) => e);
    expect((result as BusError).code).toBe('PAYLOAD_TOO_DEEP');
    expect((result as BusError).message).toMatch(
      /handler 'nest' on worker 1 returned a result it cannot send/,
    );
    expect(() => primary.publish('doc', deep(17))).toThrow(
      expect.objectContaining({ code: 'PAYLOAD_TOO_DEEP' }),
    );
  });

  it('throws or rejects only BusErrors when a payload cannot be encoded (regression: a RangeError or a getter error came out raw)', async () => {
    d = await harness(deepContract, 1);
    const { primary, workers } = d;
    workers[0]!.handle('echo', (v) => v);
    const getter = Object.defineProperty({ when: new Date(0) }, 'x', {
      enumerable: true,
      get() {
        throw new Error('getter throws');
      },
    });
    const veryDeep = { d: new Date(0), v: deep(20_000) }; // deeper than superjson can walk
    for (const payload of [getter, veryDeep]) {
      const called = await primary.call(1, 'echo', payload).catch((e: unknown) => e);
      expect(called).toBeInstanceOf(BusError);
      let thrown: unknown;
      try {
        primary.publish('doc', payload);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(BusError);
    }
    const codes = [
      await primary.call(1, 'echo', getter).catch((e: BusError) => e.code),
      await primary.call(1, 'echo', veryDeep).catch((e: BusError) => e.code),
    ];
    expect(codes).toEqual(['INVALID_ARGUMENT', 'PAYLOAD_TOO_DEEP']);
  });

  it('refuses a bad maxDepth with INVALID_ARGUMENT', async () => {
    for (const maxDepth of [0, -1, 1.5, 1_001, Number.NaN]) {
      await expect(harness(deepContract, 1, { maxDepth })).rejects.toThrow(
        /maxDepth must be an integer from 1 to 1000/,
      );
    }
  });
});
