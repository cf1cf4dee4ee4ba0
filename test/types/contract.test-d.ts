/** What the contract infers: names, inputs, outputs, handler and subscriber types. */
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  type BusError,
  type CallAllResult,
  connect,
  defineContract,
  type HandlerContext,
  type MethodInput,
  type MethodName,
  type MethodOutput,
  type PrimaryBus,
  startCluster,
  type TopicName,
  type WorkerBus,
} from '../../src/index.js';

const contract = defineContract({
  methods: {
    add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
    whoami: { output: z.object({ pid: z.number(), workerId: z.number() }) },
    notify: { input: z.object({ at: z.date() }) },
    parse: { input: z.string(), output: z.string().transform((s) => s.length) },
  },
  events: { 'cache.invalidate': z.object({ key: z.string() }) },
});
type C = typeof contract;

declare const worker: WorkerBus<C>;
declare const primary: PrimaryBus<C>;

describe('contract inference', () => {
  it('infers method and topic names', () => {
    expectTypeOf<MethodName<C>>().toEqualTypeOf<'add' | 'whoami' | 'notify' | 'parse'>();
    expectTypeOf<TopicName<C>>().toEqualTypeOf<'cache.invalidate'>();
    expectTypeOf<MethodInput<C, 'add'>>().toEqualTypeOf<{ a: number; b: number }>();
    expectTypeOf<MethodOutput<C, 'notify'>>().toEqualTypeOf<void>();
    // A transform: the caller gets zod's output type, the handler returns the input type.
    expectTypeOf<MethodOutput<C, 'parse'>>().toEqualTypeOf<number>();
  });

  it('types call, callAll and their results', () => {
    expectTypeOf(worker.call(1, 'add', { a: 1, b: 2 })).toEqualTypeOf<Promise<number>>();
    expectTypeOf(worker.call('primary', 'whoami')).toEqualTypeOf<
      Promise<{ pid: number; workerId: number }>
    >();
    expectTypeOf(primary.call('any', 'add', { a: 1, b: 2 }, { timeoutMs: 5 })).toEqualTypeOf<
      Promise<number>
    >();
    expectTypeOf(primary.callAll('whoami')).toEqualTypeOf<
      Promise<CallAllResult<{ pid: number; workerId: number }>[]>
    >();
    const all = {} as CallAllResult<number>;
    if (all.status === 'rejected') expectTypeOf(all.error).toEqualTypeOf<BusError>();
    else expectTypeOf(all.value).toEqualTypeOf<number>();
  });

  it('rejects wrong names, inputs and targets at compile time', () => {
    // @ts-expect-error: not a method of the contract
    void worker.call(1, 'sub', { a: 1, b: 2 });
    // @ts-expect-error: b must be a number
    void worker.call(1, 'add', { a: 1, b: '2' });
    // @ts-expect-error: input is required for 'add'
    void worker.call(1, 'add');
    // @ts-expect-error: 'whoami' takes no input
    void worker.call(1, 'whoami', { x: 1 });
    // @ts-expect-error: not a target
    void worker.call('everyone', 'whoami');
    // @ts-expect-error: not a topic
    worker.publish('cache.flush', { key: 'x' });
    // @ts-expect-error: key must be a string
    worker.publish('cache.invalidate', { key: 1 });
  });

  it('types handlers and subscribers', () => {
    worker.handle('add', (input, ctx) => {
      expectTypeOf(input).toEqualTypeOf<{ a: number; b: number }>();
      expectTypeOf(ctx).toEqualTypeOf<HandlerContext>();
      return input.a + input.b;
    });
    worker.handle('parse', (s) => s.toUpperCase());
    primary.handle('whoami', async () => ({ pid: 1, workerId: 0 }));
    // @ts-expect-error: must return a number
    worker.handle('add', () => 'three');
    worker.subscribe('cache.invalidate', (payload, { source }) => {
      expectTypeOf(payload).toEqualTypeOf<{ key: string }>();
      expectTypeOf(source).toEqualTypeOf<'primary' | number>();
    });
  });

  it('types connect and startCluster', () => {
    expectTypeOf(connect(contract)).toEqualTypeOf<Promise<WorkerBus<C>>>();
    expectTypeOf(startCluster({ contract, workers: 2 }))
      .resolves.toHaveProperty('bus')
      .toEqualTypeOf<PrimaryBus<C>>();
  });
});
