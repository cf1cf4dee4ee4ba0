/** What the contract infers for stores: names, values, entries, changes, and `increment`. */
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  type CounterStore,
  defineContract,
  type Lease,
  type PrimaryBus,
  type Store,
  type StoreChange,
  type StoreEntry,
  type StoreName,
  type StoreValue,
  type Watch,
  type WorkerBus,
} from '../../src/index.js';

const contract = defineContract({
  stores: {
    hits: z.number(),
    sessions: z.object({ user: z.string(), at: z.date() }),
    lengths: z.string().transform((s) => s.length),
    maybe: z.number().optional(),
  },
});
type C = typeof contract;

declare const worker: WorkerBus<C>;
declare const primary: PrimaryBus<C>;

describe('store inference', () => {
  it('infers store names and values from the schemas', () => {
    expectTypeOf<StoreName<C>>().toEqualTypeOf<'hits' | 'sessions' | 'lengths' | 'maybe'>();
    expectTypeOf<StoreValue<C, 'sessions'>>().toEqualTypeOf<{ user: string; at: Date }>();
    expectTypeOf(worker.store('hits').get('k')).toEqualTypeOf<Promise<number | undefined>>();
    expectTypeOf(primary.store('sessions').entry('k')).toEqualTypeOf<
      Promise<StoreEntry<{ user: string; at: Date }> | undefined>
    >();
    expectTypeOf(worker.store('hits').set('k', 1)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(worker.store('hits').keys()).toEqualTypeOf<Promise<string[]>>();
    expectTypeOf(worker.store('hits').delete('k')).toEqualTypeOf<Promise<boolean>>();
  });

  it('writes the input type and reads the output type of a transforming schema', () => {
    const lengths = worker.store('lengths');
    expectTypeOf(lengths).toEqualTypeOf<Store<string, number>>();
    expectTypeOf(lengths.set).parameter(1).toEqualTypeOf<string>();
    expectTypeOf(lengths.get('k')).toEqualTypeOf<Promise<number | undefined>>();
    expectTypeOf(lengths.update('k', (old) => String(old ?? 0))).toEqualTypeOf<
      Promise<StoreEntry<number>>
    >();
  });

  it('has increment only on a store of numbers', () => {
    expectTypeOf(worker.store('hits')).toEqualTypeOf<CounterStore<number, number>>();
    expectTypeOf(worker.store('hits').increment('k', 5)).toEqualTypeOf<Promise<number>>();
    // @ts-expect-error: increment is a type error on a store that is not of numbers
    void worker.store('sessions').increment('k');
    // @ts-expect-error: nor on one whose values may be undefined
    void primary.store('maybe').increment('k');
  });

  it('rejects wrong names and values at compile time', () => {
    // @ts-expect-error: not a store of the contract
    void worker.store('nope');
    // @ts-expect-error: a string in a store of numbers
    void worker.store('hits').set('k', 'one');
    // @ts-expect-error: a session without its date
    void worker.store('sessions').set('k', { user: 'ann' });
    // @ts-expect-error: update must return the store's input type
    void worker.store('hits').update('k', () => 'x');
  });

  it('types watch changes as a union on op', () => {
    const off = worker.store('sessions').watch({ prefix: 's:' }, (change) => {
      expectTypeOf(change).toEqualTypeOf<StoreChange<{ user: string; at: Date }>>();
      if (change.op === 'set')
        expectTypeOf(change.value).toEqualTypeOf<{ user: string; at: Date }>();
      else expectTypeOf(change.value).toEqualTypeOf<undefined>();
    });
    expectTypeOf(off).toEqualTypeOf<Watch>();
    expectTypeOf(off.ready).toEqualTypeOf<Promise<number>>();
  });

  it('types locks', () => {
    expectTypeOf(worker.lock('nightly', { ttlMs: 30_000, waitMs: 5_000 })).toEqualTypeOf<
      Promise<Lease>
    >();
    expectTypeOf<Lease['token']>().toEqualTypeOf<number>();
    expectTypeOf<ReturnType<Lease['release']>>().toEqualTypeOf<Promise<boolean>>();
    // extend(ttlMs) resolves with the new expiresAt; the token is the same lease's.
    expectTypeOf<Lease['extend']>().parameters.toEqualTypeOf<[ttlMs: number]>();
    expectTypeOf<ReturnType<Lease['extend']>>().toEqualTypeOf<Promise<number>>();
    expectTypeOf<Lease['expiresAt']>().toEqualTypeOf<number>();
  });
});
