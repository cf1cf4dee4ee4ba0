/**
 * Pub/sub over real IPC: fan-out from the primary and from a worker to every process, order
 * between one publisher and one receiver, unsubscribe, and invalid event frames.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BusError, EventContext, Origin } from '../../src/index.js';
import { type App, start, stop, until, workerIds } from './helpers.js';

let app: App;
let w1: number;
let w2: number;
let w3: number;
/** What the primary's long-lived subscriber saw, in order. */
const primaryReceived: { key: string; source: Origin; topic: string }[] = [];

beforeAll(async () => {
  app = await start({ workers: 3 });
  [w1, w2, w3] = workerIds(app) as [number, number, number];
  app.bus.subscribe('cache.invalidate', ({ key }, ctx: EventContext) => {
    primaryReceived.push({ key, source: ctx.source, topic: ctx.topic });
  });
});

afterEach(async () => {
  expect(app.bus.pendingCount).toBe(0);
  const pending = await app.bus.callAll('pending');
  expect(pending.every((r) => r.status === 'fulfilled' && r.value === 0)).toBe(true);
});

afterAll(() => stop(app));

const unique = (label: string) => `${label}-${randomUUID()}-`;

/** Keys with `prefix` in `keys`, in order. */
const withPrefix = (keys: readonly string[], prefix: string) =>
  keys.filter((k) => k.startsWith(prefix));

/** Waits until every worker's `received` and the primary have seen every key of `keys`. */
async function seenEverywhere(keys: readonly string[]): Promise<void> {
  for (const id of workerIds(app)) {
    await until(
      () => app.bus.call(id, 'received'),
      (got) => keys.every((k) => got.includes(k)),
      `worker ${id} receives ${keys.join(', ')}`,
    );
  }
  await until(
    () => primaryReceived.map((r) => r.key),
    (got) => keys.every((k) => got.includes(k)),
    `the primary receives ${keys.join(', ')}`,
  );
}

describe('fan-out', () => {
  it('delivers a publish from the primary to every subscriber in every process, once', async () => {
    const prefix = unique('from-primary');
    app.bus.publish('cache.invalidate', { key: `${prefix}a` });
    // A second event after it: once it has arrived everywhere, so has the first (same publisher),
    // and a duplicate of the first would have arrived too.
    app.bus.publish('cache.invalidate', { key: `${prefix}end` });
    await seenEverywhere([`${prefix}end`]);
    for (const id of [w1, w2, w3]) {
      expect(withPrefix(await app.bus.call(id, 'received'), prefix)).toEqual([
        `${prefix}a`,
        `${prefix}end`,
      ]);
    }
    expect(primaryReceived.filter((r) => r.key.startsWith(prefix))).toEqual([
      { key: `${prefix}a`, source: 'primary', topic: 'cache.invalidate' },
      { key: `${prefix}end`, source: 'primary', topic: 'cache.invalidate' },
    ]);
  });

  it('delivers a publish from a worker to every process, the publisher and the primary included', async () => {
    const prefix = unique('from-worker');
    await app.bus.call(w2, 'publish', { key: `${prefix}a` });
    await app.bus.call(w2, 'publish', { key: `${prefix}end` });
    await seenEverywhere([`${prefix}end`]);
    for (const id of [w1, w2, w3]) {
      expect(withPrefix(await app.bus.call(id, 'received'), prefix)).toEqual([
        `${prefix}a`,
        `${prefix}end`,
      ]);
    }
    expect(primaryReceived.filter((r) => r.key.startsWith(prefix))).toEqual([
      { key: `${prefix}a`, source: w2, topic: 'cache.invalidate' },
      { key: `${prefix}end`, source: w2, topic: 'cache.invalidate' },
    ]);
  });

  it('rejects an invalid payload at the publisher, synchronously, with BAD_PAYLOAD', () => {
    let thrown: unknown;
    try {
      app.bus.publish('cache.invalidate', { key: 42 } as unknown as { key: string });
    } catch (error) {
      thrown = error;
    }
    expect((thrown as BusError).code).toBe('BAD_PAYLOAD');
    expect((thrown as BusError).issues).toEqual([
      expect.objectContaining({ path: ['key'], code: 'invalid_type' }),
    ]);
  });
});

describe('ordering', () => {
  it('delivers 500 events from one worker to each receiver in publish order', async () => {
    const prefix = unique('order');
    const n = 500;
    const expected = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
    await app.bus.call(w1, 'publishMany', { prefix, count: n });
    for (const id of [w2, w3, w1]) {
      const got = await until(
        () => app.bus.call(id, 'receivedAlways'),
        (keys) => withPrefix(keys, prefix).length >= n,
        `worker ${id} receives ${n} events`,
      );
      expect(withPrefix(got, prefix)).toEqual(expected);
    }
    await until(
      () => primaryReceived.filter((r) => r.key.startsWith(prefix)).length,
      (count) => count >= n,
      `the primary receives ${n} events`,
    );
    expect(primaryReceived.filter((r) => r.key.startsWith(prefix)).map((r) => r.key)).toEqual(
      expected,
    );
  });

  it('delivers 500 events from the primary to each worker in publish order', async () => {
    const prefix = unique('order-primary');
    const n = 500;
    const expected = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
    for (const key of expected) app.bus.publish('cache.invalidate', { key });
    for (const id of [w1, w2, w3]) {
      const got = await until(
        () => app.bus.call(id, 'receivedAlways'),
        (keys) => withPrefix(keys, prefix).length >= n,
        `worker ${id} receives ${n} events`,
      );
      expect(withPrefix(got, prefix)).toEqual(expected);
    }
  });
});

describe('unsubscribe', () => {
  it('stops delivery to a worker subscriber, and only to it', async () => {
    try {
      await app.bus.call(w2, 'unsubscribe');
      const prefix = unique('after-unsubscribe');
      app.bus.publish('cache.invalidate', { key: `${prefix}x` });
      // w2's other subscriber runs in the same delivery: once it has the event, the removed one
      // would have had it too.
      await until(
        () => app.bus.call(w2, 'receivedAlways'),
        (keys) => keys.includes(`${prefix}x`),
        'w2 delivers the event to its remaining subscriber',
      );
      expect(withPrefix(await app.bus.call(w2, 'received'), prefix)).toEqual([]);
      await until(
        () => app.bus.call(w1, 'received'),
        (keys) => keys.includes(`${prefix}x`),
        'w1, still subscribed, receives the event',
      );
    } finally {
      await app.bus.call(w2, 'resubscribe');
    }
    const again = unique('resubscribed');
    app.bus.publish('cache.invalidate', { key: `${again}x` });
    await seenEverywhere([`${again}x`]);
  });

  it('stops delivery to a primary subscriber, and only to it', async () => {
    const removed: string[] = [];
    const off = app.bus.subscribe('cache.invalidate', ({ key }) => {
      removed.push(key);
    });
    const prefix = unique('primary-unsubscribe');
    await app.bus.call(w3, 'publish', { key: `${prefix}before` });
    await until(
      () => removed,
      (keys) => keys.includes(`${prefix}before`),
      'subscribed',
    );
    off();
    off(); // idempotent
    await app.bus.call(w3, 'publish', { key: `${prefix}after` });
    await until(
      () => primaryReceived.map((r) => r.key),
      (keys) => keys.includes(`${prefix}after`),
      'the remaining primary subscriber receives the event',
    );
    expect(withPrefix(removed, prefix)).toEqual([`${prefix}before`]);
  });
});

describe('invalid event frames', () => {
  it('never reach a subscriber and are reported as BAD_PAYLOAD by every receiver', async () => {
    const appErrors: BusError[] = [];
    const busErrors: BusError[] = [];
    const onApp = (e: BusError) => appErrors.push(e);
    const onBus = (e: BusError) => busErrors.push(e);
    app.on('error', onApp);
    app.bus.on('error', onBus);
    try {
      const before = await Promise.all([w2, w3].map((id) => app.bus.call(id, 'errors')));
      // w1 sends an event frame whose payload ({ key: 123 }) fails the topic's schema.
      await app.bus.call(w1, 'sendBadEvent');
      const isBad = (e: BusError) => e.code === 'BAD_PAYLOAD' && e.message.includes(`worker ${w1}`);
      await until(
        () => busErrors,
        (es) => es.some(isBad),
        "the primary's bus reports it",
      );
      await until(
        () => appErrors,
        (es) => es.some(isBad),
        'the app reports it',
      );
      const reported = busErrors.find(isBad)!;
      expect(reported.issues).toEqual([
        expect.objectContaining({ path: ['key'], code: 'invalid_type' }),
      ]);
      for (const [i, id] of [w2, w3].entries()) {
        const errors = await until(
          () => app.bus.call(id, 'errors'),
          (es) => es.length > before[i]!.length,
          `worker ${id} reports it`,
        );
        expect(errors.slice(before[i]!.length)).toEqual([
          expect.stringMatching(new RegExp(`^BAD_PAYLOAD: .*worker ${w1}`)),
        ]);
        // The report and the delivery are the same step: had a subscriber got { key: 123 }, its
        // list would hold a number and these calls would fail their output schema (BAD_OUTPUT).
        await app.bus.call(id, 'received');
        await app.bus.call(id, 'receivedAlways');
      }
      expect(primaryReceived.filter((r) => typeof r.key !== 'string')).toEqual([]);
      // And the bus carries on.
      const prefix = unique('after-bad');
      await app.bus.call(w1, 'publish', { key: `${prefix}ok` });
      await seenEverywhere([`${prefix}ok`]);
    } finally {
      app.off('error', onApp);
      app.bus.off('error', onBus);
    }
  });
});
