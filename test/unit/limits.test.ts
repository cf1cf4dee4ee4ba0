/** maxPayloadBytes: refused by the sender with PAYLOAD_TOO_LARGE, before the channel. */
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
