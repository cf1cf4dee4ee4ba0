import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineContract } from '../../src/index.js';
import { describeDrift, fingerprint } from '../../src/protocol/fingerprint.js';

const base = {
  methods: {
    add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
    at: { input: z.object({ when: z.date() }) },
  },
  events: { tick: z.object({ n: z.number() }) },
};

describe('contract fingerprint', () => {
  it('is the same for equal contracts defined separately, and ignores descriptions', () => {
    const a = defineContract(base);
    const b = defineContract({
      ...base,
      methods: {
        ...base.methods,
        add: { ...base.methods.add, output: z.number().describe('the sum') },
      },
    });
    expect(fingerprint(a).hash).toBe(fingerprint(b).hash);
    expect(describeDrift(fingerprint(a), fingerprint(b))).toEqual([]);
  });

  it('names every method and topic that differs', () => {
    const a = defineContract(base);
    const b = defineContract({
      methods: {
        add: { input: z.object({ a: z.number(), b: z.string() }), output: z.number() },
        at: { input: z.object({ when: z.map(z.string(), z.string()) }) }, // Date -> Map: both unrepresentable
        extra: {},
      },
      events: {},
    });
    expect(describeDrift(fingerprint(a), fingerprint(b))).toEqual([
      "event 'tick' (only in the primary's contract)",
      "method 'add' (schemas differ)",
      "method 'at' (schemas differ)",
      "method 'extra' (only in the worker's contract)",
    ]);
  });
});
