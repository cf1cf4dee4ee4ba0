/**
 * Topic patterns at the type level: a pattern's handler receives the union of the payloads of
 * the contract's topics it matches, `ctx.topic` is the union of those topics, and a pattern that
 * matches no topic (or is invalid) is a compile error. Checked against a contract of 100 topics.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  type Contract,
  defineContract,
  type MatchingTopics,
  type PatternPayload,
  type PrimaryBus,
  type TopicMatches,
  type TopicName,
  type WorkerBus,
} from '../../src/index.js';

const small = defineContract({
  events: {
    'cache.user': z.object({ key: z.string() }),
    'cache.session': z.object({ id: z.number() }),
    'orders.eu.paid': z.object({ amount: z.number() }),
    'orders.eu.refunded': z.object({ reason: z.string() }),
    'orders.us.paid': z.object({ amount: z.number(), cents: z.boolean() }),
    audit: z.string(),
  },
});
type S = typeof small;

/** 100 topics: 20 services x 5 events. */
const big = defineContract({
  events: {
    'svc0.created': z.object({ n: z.number() }),
    'svc0.updated': z.object({ s: z.string() }),
    'svc0.deleted': z.object({ n: z.number() }),
    'svc0.eu.paid': z.object({ s: z.string() }),
    'svc0.us.paid': z.object({ n: z.number() }),
    'svc1.created': z.object({ s: z.string() }),
    'svc1.updated': z.object({ n: z.number() }),
    'svc1.deleted': z.object({ s: z.string() }),
    'svc1.eu.paid': z.object({ n: z.number() }),
    'svc1.us.paid': z.object({ s: z.string() }),
    'svc2.created': z.object({ n: z.number() }),
    'svc2.updated': z.object({ s: z.string() }),
    'svc2.deleted': z.object({ n: z.number() }),
    'svc2.eu.paid': z.object({ s: z.string() }),
    'svc2.us.paid': z.object({ n: z.number() }),
    'svc3.created': z.object({ s: z.string() }),
    'svc3.updated': z.object({ n: z.number() }),
    'svc3.deleted': z.object({ s: z.string() }),
    'svc3.eu.paid': z.object({ n: z.number() }),
    'svc3.us.paid': z.object({ s: z.string() }),
    'svc4.created': z.object({ n: z.number() }),
    'svc4.updated': z.object({ s: z.string() }),
    'svc4.deleted': z.object({ n: z.number() }),
    'svc4.eu.paid': z.object({ s: z.string() }),
    'svc4.us.paid': z.object({ n: z.number() }),
    'svc5.created': z.object({ s: z.string() }),
    'svc5.updated': z.object({ n: z.number() }),
    'svc5.deleted': z.object({ s: z.string() }),
    'svc5.eu.paid': z.object({ n: z.number() }),
    'svc5.us.paid': z.object({ s: z.string() }),
    'svc6.created': z.object({ n: z.number() }),
    'svc6.updated': z.object({ s: z.string() }),
    'svc6.deleted': z.object({ n: z.number() }),
    'svc6.eu.paid': z.object({ s: z.string() }),
    'svc6.us.paid': z.object({ n: z.number() }),
    'svc7.created': z.object({ s: z.string() }),
    'svc7.updated': z.object({ n: z.number() }),
    'svc7.deleted': z.object({ s: z.string() }),
    'svc7.eu.paid': z.object({ n: z.number() }),
    'svc7.us.paid': z.object({ s: z.string() }),
    'svc8.created': z.object({ n: z.number() }),
    'svc8.updated': z.object({ s: z.string() }),
    'svc8.deleted': z.object({ n: z.number() }),
    'svc8.eu.paid': z.object({ s: z.string() }),
    'svc8.us.paid': z.object({ n: z.number() }),
    'svc9.created': z.object({ s: z.string() }),
    'svc9.updated': z.object({ n: z.number() }),
    'svc9.deleted': z.object({ s: z.string() }),
    'svc9.eu.paid': z.object({ n: z.number() }),
    'svc9.us.paid': z.object({ s: z.string() }),
    'svc10.created': z.object({ n: z.number() }),
    'svc10.updated': z.object({ s: z.string() }),
    'svc10.deleted': z.object({ n: z.number() }),
    'svc10.eu.paid': z.object({ s: z.string() }),
    'svc10.us.paid': z.object({ n: z.number() }),
    'svc11.created': z.object({ s: z.string() }),
    'svc11.updated': z.object({ n: z.number() }),
    'svc11.deleted': z.object({ s: z.string() }),
    'svc11.eu.paid': z.object({ n: z.number() }),
    'svc11.us.paid': z.object({ s: z.string() }),
    'svc12.created': z.object({ n: z.number() }),
    'svc12.updated': z.object({ s: z.string() }),
    'svc12.deleted': z.object({ n: z.number() }),
    'svc12.eu.paid': z.object({ s: z.string() }),
    'svc12.us.paid': z.object({ n: z.number() }),
    'svc13.created': z.object({ s: z.string() }),
    'svc13.updated': z.object({ n: z.number() }),
    'svc13.deleted': z.object({ s: z.string() }),
    'svc13.eu.paid': z.object({ n: z.number() }),
    'svc13.us.paid': z.object({ s: z.string() }),
    'svc14.created': z.object({ n: z.number() }),
    'svc14.updated': z.object({ s: z.string() }),
    'svc14.deleted': z.object({ n: z.number() }),
    'svc14.eu.paid': z.object({ s: z.string() }),
    'svc14.us.paid': z.object({ n: z.number() }),
    'svc15.created': z.object({ s: z.string() }),
    'svc15.updated': z.object({ n: z.number() }),
    'svc15.deleted': z.object({ s: z.string() }),
    'svc15.eu.paid': z.object({ n: z.number() }),
    'svc15.us.paid': z.object({ s: z.string() }),
    'svc16.created': z.object({ n: z.number() }),
    'svc16.updated': z.object({ s: z.string() }),
    'svc16.deleted': z.object({ n: z.number() }),
    'svc16.eu.paid': z.object({ s: z.string() }),
    'svc16.us.paid': z.object({ n: z.number() }),
    'svc17.created': z.object({ s: z.string() }),
    'svc17.updated': z.object({ n: z.number() }),
    'svc17.deleted': z.object({ s: z.string() }),
    'svc17.eu.paid': z.object({ n: z.number() }),
    'svc17.us.paid': z.object({ s: z.string() }),
    'svc18.created': z.object({ n: z.number() }),
    'svc18.updated': z.object({ s: z.string() }),
    'svc18.deleted': z.object({ n: z.number() }),
    'svc18.eu.paid': z.object({ s: z.string() }),
    'svc18.us.paid': z.object({ n: z.number() }),
    'svc19.created': z.object({ s: z.string() }),
    'svc19.updated': z.object({ n: z.number() }),
    'svc19.deleted': z.object({ s: z.string() }),
    'svc19.eu.paid': z.object({ n: z.number() }),
    'svc19.us.paid': z.object({ s: z.string() }),
  },
});
type B = typeof big;

declare const worker: WorkerBus<S>;
declare const primary: PrimaryBus<S>;
declare const bigBus: WorkerBus<B>;

describe('topic patterns (types)', () => {
  it('matches tokens as NATS subjects do', () => {
    expectTypeOf<TopicMatches<'cache.*', 'cache.user'>>().toEqualTypeOf<true>();
    expectTypeOf<TopicMatches<'cache.*', 'cache.user.x'>>().toEqualTypeOf<false>();
    expectTypeOf<TopicMatches<'cache.*', 'cache'>>().toEqualTypeOf<false>();
    expectTypeOf<TopicMatches<'orders.>', 'orders.eu.paid'>>().toEqualTypeOf<true>();
    expectTypeOf<TopicMatches<'orders.>', 'orders'>>().toEqualTypeOf<false>();
    expectTypeOf<TopicMatches<'*.eu.*', 'orders.eu.paid'>>().toEqualTypeOf<true>();
    expectTypeOf<TopicMatches<'>', 'audit'>>().toEqualTypeOf<true>();
    expectTypeOf<TopicMatches<'cache.user', 'cache.users'>>().toEqualTypeOf<false>();
    expectTypeOf<TopicMatches<'ca*', 'cache'>>().toEqualTypeOf<false>();
  });

  it('gives the topics a pattern matches', () => {
    expectTypeOf<MatchingTopics<S, 'cache.*'>>().toEqualTypeOf<'cache.user' | 'cache.session'>();
    expectTypeOf<MatchingTopics<S, 'orders.>'>>().toEqualTypeOf<
      'orders.eu.paid' | 'orders.eu.refunded' | 'orders.us.paid'
    >();
    expectTypeOf<MatchingTopics<S, '*.*.paid'>>().toEqualTypeOf<
      'orders.eu.paid' | 'orders.us.paid'
    >();
    expectTypeOf<MatchingTopics<S, 'audit'>>().toEqualTypeOf<'audit'>();
    expectTypeOf<MatchingTopics<S, 'users.*'>>().toEqualTypeOf<never>();
  });

  it("types a pattern handler's payload as the union of its topics' payloads, and ctx.topic as its topics", () => {
    worker.subscribe('cache.*', (payload, ctx) => {
      expectTypeOf(payload).toEqualTypeOf<{ key: string } | { id: number }>();
      expectTypeOf(ctx.topic).toEqualTypeOf<'cache.user' | 'cache.session'>();
    });
    primary.subscribe('orders.*.paid', (payload, { topic }) => {
      expectTypeOf(payload).toEqualTypeOf<
        { amount: number } | { amount: number; cents: boolean }
      >();
      expectTypeOf(topic).toEqualTypeOf<'orders.eu.paid' | 'orders.us.paid'>();
      if (topic === 'orders.eu.paid') expectTypeOf(payload.amount).toEqualTypeOf<number>();
    });
    worker.subscribe('audit', (payload, { topic }) => {
      expectTypeOf(payload).toEqualTypeOf<string>();
      expectTypeOf(topic).toEqualTypeOf<'audit'>();
    });
    expectTypeOf<PatternPayload<S, '>'>>().toEqualTypeOf<
      | { key: string }
      | { id: number }
      | { amount: number }
      | { reason: string }
      | { amount: number; cents: boolean }
      | string
    >();
  });

  it('refuses, at compile time, a pattern that matches no topic and an invalid one', () => {
    // @ts-expect-error: no topic under 'users'
    worker.subscribe('users.*', () => {});
    // @ts-expect-error: 'cache' alone is not a topic ('*' needs a token)
    worker.subscribe('cache', () => {});
    // @ts-expect-error: '>' must be last
    worker.subscribe('orders.>.paid', () => {});
    // @ts-expect-error: a wildcard inside a token
    worker.subscribe('cache.us*', () => {});
    // @ts-expect-error: an empty token
    primary.subscribe('cache..user', () => {});
    // @ts-expect-error: a string that is not a literal cannot be checked
    worker.subscribe('cache.*' as string, () => {});
    // @ts-expect-error: publishing stays to concrete topics
    worker.publish('cache.*', { key: 'k' });
  });

  it('keeps plain topic subscriptions working in code generic over the contract', () => {
    function onEvery<C extends Contract>(bus: WorkerBus<C>, topics: TopicName<C>[]) {
      for (const t of topics) {
        bus.subscribe(t, (_payload, ctx) => {
          const topic: TopicName<C> = ctx.topic;
          return void topic;
        });
      }
    }
    onEvery(worker, ['audit', 'cache.user']);
  });

  it('stays precise for a contract of 100 topics', () => {
    bigBus.subscribe('svc7.*', (payload, { topic }) => {
      expectTypeOf(topic).toEqualTypeOf<'svc7.created' | 'svc7.updated' | 'svc7.deleted'>();
      expectTypeOf(payload).toEqualTypeOf<{ n: number } | { s: string }>();
    });
    type N =
      | 0
      | 1
      | 2
      | 3
      | 4
      | 5
      | 6
      | 7
      | 8
      | 9
      | 10
      | 11
      | 12
      | 13
      | 14
      | 15
      | 16
      | 17
      | 18
      | 19;
    expectTypeOf<MatchingTopics<B, '*.eu.paid'>>().toEqualTypeOf<`svc${N}.eu.paid`>();
    expectTypeOf<MatchingTopics<B, '*.*.paid'>>().toEqualTypeOf<`svc${N}.${'eu' | 'us'}.paid`>();
    expectTypeOf<MatchingTopics<B, 'svc19.>'>>().toEqualTypeOf<
      'svc19.created' | 'svc19.updated' | 'svc19.deleted' | 'svc19.eu.paid' | 'svc19.us.paid'
    >();
    // @ts-expect-error: no svc20
    bigBus.subscribe('svc20.>', () => {});
  });
});
