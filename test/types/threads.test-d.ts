/** What the contract infers for a thread pool (`call`, `callAll`, `publish`) and in a thread (`handle`, `subscribe`). */
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { BusError } from '../../src/errors.js';
import { defineContract } from '../../src/index.js';
import type {
  Pool,
  PoolStats,
  ThreadBus,
  ThreadCallOptions,
  ThreadCallResult,
  ThreadHandlerContext,
} from '../../src/threads/index.js';

const contract = defineContract({
  methods: {
    validate: {
      input: z.object({
        rows: z.array(z.object({ id: z.string(), n: z.string().transform(Number) })),
      }),
      output: z.object({ ok: z.number(), failed: z.array(z.string()) }),
    },
    ping: { output: z.literal('pong') },
    reset: {},
  },
  events: {
    'rules.changed': z.object({ version: z.number(), at: z.date().default(() => new Date(0)) }),
  },
});
type C = typeof contract;

declare const pool: Pool<C>;
declare const bus: ThreadBus<C>;

describe('pool.call', () => {
  it('takes the method’s input type and resolves with its output type', () => {
    expectTypeOf(pool.call('any', 'validate', { rows: [{ id: 'a', n: '1' }] })).toEqualTypeOf<
      Promise<{ ok: number; failed: string[] }>
    >();
    expectTypeOf(pool.call(2, 'ping')).toEqualTypeOf<Promise<'pong'>>();
    expectTypeOf(pool.call('any', 'reset')).toEqualTypeOf<Promise<void>>();
  });

  it('refuses a wrong input, an unknown method, a bad target and an unknown option', () => {
    // @ts-expect-error: n is a string on input (zod's input type)
    void pool.call('any', 'validate', { rows: [{ id: 'a', n: 1 }] });
    // @ts-expect-error: not a method of the contract
    void pool.call('any', 'nope');
    // @ts-expect-error: a target is 'any' or a thread index
    void pool.call('primary', 'ping');
    // @ts-expect-error: no such option
    void pool.call('any', 'ping', undefined, { timeout: 5 });
    // @ts-expect-error: the input is required
    void pool.call('any', 'validate');
  });

  it('takes timeoutMs, signal and transfer', () => {
    const buf = new ArrayBuffer(8);
    void pool.call('any', 'ping', undefined, {
      timeoutMs: 5,
      signal: AbortSignal.timeout(5),
      transfer: [buf],
    });
    expectTypeOf<ThreadCallOptions['transfer']>().toEqualTypeOf<
      readonly import('node:worker_threads').Transferable[] | undefined
    >();
  });
});

describe('pool.callAll and pool.publish', () => {
  it('callAll resolves with one settled output per thread', () => {
    expectTypeOf(pool.callAll('ping')).toEqualTypeOf<Promise<ThreadCallResult<'pong'>[]>>();
    const r = {} as ThreadCallResult<'pong'>;
    if (r.status === 'fulfilled') expectTypeOf(r.value).toEqualTypeOf<'pong'>();
    else expectTypeOf(r.error).toEqualTypeOf<BusError>();
    expectTypeOf(r.thread).toEqualTypeOf<number>();
  });

  it('publish takes the topic’s input type', () => {
    pool.publish('rules.changed', { version: 7 });
    // @ts-expect-error: version is a number
    pool.publish('rules.changed', { version: '7' });
    // @ts-expect-error: not a topic of the contract
    pool.publish('nope', {});
  });

  it('stats() has threads, busy, queued and callsServed', () => {
    expectTypeOf(pool.stats()).toEqualTypeOf<PoolStats>();
    expectTypeOf(pool.stats().callsServed).toEqualTypeOf<number>();
  });
});

describe('connectThread’s bus', () => {
  it('handle gives the parsed input and the signal, and wants the output’s input type', () => {
    bus.handle('validate', (input, context) => {
      expectTypeOf(input).toEqualTypeOf<{ rows: { id: string; n: number }[] }>();
      expectTypeOf(context).toEqualTypeOf<ThreadHandlerContext>();
      expectTypeOf(context.signal).toEqualTypeOf<AbortSignal>();
      return { ok: input.rows.length, failed: [] };
    });
    bus.handle('ping', async () => 'pong' as const);
    // @ts-expect-error: the output is 'pong'
    bus.handle('ping', () => 'ping');
    // @ts-expect-error: not a method of the contract
    bus.handle('nope', () => 1);
  });

  it('subscribe gives the topic’s output type', () => {
    bus.subscribe('rules.changed', (payload, context) => {
      expectTypeOf(payload).toEqualTypeOf<{ version: number; at: Date }>();
      expectTypeOf(context.topic).toEqualTypeOf<string>();
    });
    // @ts-expect-error: not a topic of the contract
    bus.subscribe('nope', () => {});
  });
});
