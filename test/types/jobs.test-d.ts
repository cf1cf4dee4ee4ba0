/** The types of run-once jobs and of the drop-in stores: on both buses, and what they accept. */
import type { Store as RateLimitStore } from 'express-rate-limit';
import Keyv, { type KeyvStorageAdapter } from 'keyv';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { ClusterStore } from '../../src/adapters/express-rate-limit.js';
import { ClusterKeyv } from '../../src/adapters/keyv.js';
import {
  defineContract,
  type PrimaryBus,
  type SingletonContext,
  type SingletonHandle,
  type TickContext,
  type WorkerBus,
} from '../../src/index.js';

const contract = defineContract({
  stores: { rateLimit: z.number(), cache: z.unknown(), names: z.string() },
});
type C = typeof contract;
declare const worker: WorkerBus<C>;
declare const primary: PrimaryBus<C>;

describe('bus.singleton and bus.schedule', () => {
  it('are on the worker bus and on the primary bus, with the same types', () => {
    expectTypeOf(worker.singleton).toEqualTypeOf(primary.singleton);
    expectTypeOf(worker.schedule).toEqualTypeOf(primary.schedule);
    expectTypeOf(worker.singleton('job', () => {})).toEqualTypeOf<SingletonHandle>();
    expectTypeOf(worker.schedule('job', '* * * * *', () => {})).toEqualTypeOf<
      Promise<SingletonHandle>
    >();
  });

  it('give the job its context, and the tick its due time', () => {
    worker.singleton('job', (ctx) => {
      expectTypeOf(ctx).toEqualTypeOf<SingletonContext>();
      expectTypeOf(ctx.fencingToken).toEqualTypeOf<number>();
      expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
    });
    void worker.schedule('tick', '* * * * *', (ctx) => {
      expectTypeOf(ctx).toEqualTypeOf<TickContext>();
      expectTypeOf(ctx.scheduledAt).toEqualTypeOf<Date>();
    });
    // @ts-expect-error ttlMs is a number of ms
    worker.singleton('job', () => {}, { ttlMs: '10s' });
  });
});

describe('ClusterStore and ClusterKeyv', () => {
  it("ClusterStore is express-rate-limit's Store, over a store of numbers only", () => {
    expectTypeOf(new ClusterStore(worker.store('rateLimit'))).toMatchTypeOf<RateLimitStore>();
    // @ts-expect-error a store of strings has no increment
    new ClusterStore(worker.store('names'));
  });

  it("ClusterKeyv is keyv's storage adapter, over any store", () => {
    expectTypeOf(new ClusterKeyv(worker.store('cache'))).toMatchTypeOf<KeyvStorageAdapter>();
    expectTypeOf(new Keyv(new ClusterKeyv(worker.store('cache')))).toMatchTypeOf<Keyv>();
  });
});
