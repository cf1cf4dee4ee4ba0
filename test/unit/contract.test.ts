/** defineContract takes zod 4 schemas only (the `zod` peer dependency), and says so at once. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { z as zodMini } from 'zod/mini';
import { z as zod3 } from 'zod/v3';
import { type ContractDef, defineContract } from '../../src/contract.js';
import { BusError } from '../../src/errors.js';

/** The BusError `defineContract(def)` throws synchronously. */
function refusal(def: unknown): BusError {
  try {
    defineContract(def as ContractDef);
  } catch (error) {
    if (error instanceof BusError) return error;
    throw error;
  }
  throw new Error('defineContract accepted the definition');
}

describe('defineContract with a schema that is not zod 4 (regressions)', () => {
  it.each([
    ["method 'add'.input", { methods: { add: { input: zod3.object({ a: zod3.number() }) } } }],
    ["method 'add'.output", { methods: { add: { input: z.number(), output: zod3.number() } } }],
    ["event 'tick'", { events: { tick: zod3.object({ n: zod3.number() }) } }],
    ["store 'users'", { stores: { users: zod3.string() } }],
    ['config', { config: zod3.object({ level: zod3.string() }) }],
  ])('refuses a zod 3 schema as %s with INVALID_ARGUMENT naming it and zod 4', (where, def) => {
    const error = refusal(def);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain(`defineContract: ${where} must be a zod schema`);
    expect(error.message).toContain('zod 3 schema');
    expect(error.message).toContain('zod@^4');
  });

  it.each([
    ['a plain object', {}, 'an object'],
    ['a string', 'z.string()', 'the string "z.string()"'],
    ['null', null, 'null'],
    [
      'an object with a safeParse of its own',
      { safeParse: () => ({ success: true }) },
      'an object',
    ],
    [
      'a schema of another major zod',
      { _zod: { version: { major: 5 }, def: {} }, safeParse: () => ({}) },
      'zod 5',
    ],
  ])('refuses %s with INVALID_ARGUMENT saying what it got', (_kind, schema, got) => {
    const error = refusal({ events: { tick: schema } });
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain("event 'tick' must be a zod schema");
    expect(error.message).toContain(got);
  });

  it('never throws anything but a BusError, even for a schema whose getters throw', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('trap');
        },
      },
    );
    expect(refusal({ stores: { s: hostile } }).code).toBe('INVALID_ARGUMENT');
  });

  it('accepts zod 4 schemas, classic and mini', () => {
    const contract = defineContract({
      methods: { add: { input: z.object({ a: z.number() }), output: z.number() } },
      events: { tick: zodMini.object({ n: zodMini.number() }) as unknown as z.ZodType },
      config: z.object({ level: z.string() }),
    });
    expect([...contract.methods.keys()]).toEqual(['add']);
    expect(contract.events.get('tick')?.safeParse({ n: 1 }).success).toBe(true);
  });
});
