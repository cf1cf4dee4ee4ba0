/**
 * Topic patterns between real processes: each process receives exactly the events of the topics
 * its patterns match, with the concrete topic; the primary knows each worker's patterns and
 * forwards only there; an invalid pattern is refused in the worker.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusError, type ClusterApp, RemoteError, startCluster } from '../../src/index.js';
import { contract } from './fixtures/streams-contract.js';
import { expectNoProcessLeft, rejection, until, workerIds } from './helpers.js';

const WORKER = fileURLToPath(new URL('./fixtures/streams-worker.ts', import.meta.url));
let app: ClusterApp<typeof contract>;
let w1: number;
let w2: number;

beforeAll(async () => {
  app = await startCluster({ contract, workers: 2, exec: WORKER, execArgv: ['--import', 'tsx'] });
  [w1, w2] = workerIds(app as never) as [number, number];
});

afterAll(async () => {
  await app.close();
  expect(app.bus.pendingCount).toBe(0);
  expectNoProcessLeft();
});

const ALL = [
  ['cache.user', { key: 'u' }],
  ['cache.session', { id: 1 }],
  ['orders.eu.paid', { amount: 1 }],
  ['orders.us.paid', { amount: 2 }],
  ['orders.eu.refund.issued', { amount: 3 }],
  ['audit', 'a'],
] as const;

describe('topic patterns between processes', () => {
  it('delivers to each process exactly the topics its patterns match, with the concrete topic', async () => {
    await app.bus.call(w1, 'subscribe', 'orders.>');
    await app.bus.call(w1, 'subscribe', 'audit');
    await app.bus.call(w2, 'subscribe', 'cache.*');
    await app.bus.call(w2, 'subscribe', '*.eu.*');
    const primarySeen: string[] = [];
    const off = app.bus.subscribe('orders.*.paid', (payload, { topic, source }) => {
      primarySeen.push(`${topic}:${payload.amount}:${source}`);
    });
    expect([...app.bus.inspectWorker(w1)!.patterns].sort()).toEqual(['audit', 'orders.>']);
    expect([...app.bus.inspectWorker(w2)!.patterns].sort()).toEqual(['*.eu.*', 'cache.*']);

    for (const [topic, payload] of ALL) {
      (app.bus.publish as (t: string, p: unknown) => void)(topic, payload);
    }
    await app.bus.call(w1, 'publish', { topic: 'orders.us.paid', payload: { amount: 9 } });
    await app.bus.call(w2, 'publish', { topic: 'cache.user', payload: { key: 'from w2' } });

    const received = async (w: number, count: number) => {
      const all: Array<{ topic: string; payload: unknown }> = [];
      await until(
        async () => {
          all.push(...(await app.bus.call(w, 'received')));
          return all.length;
        },
        (n) => n >= count,
        `worker ${w} received ${count}`,
      );
      await new Promise((r) => setTimeout(r, 100));
      all.push(...(await app.bus.call(w, 'received')));
      return all.map((e) => `${e.topic}:${JSON.stringify(e.payload)}`).sort();
    };
    expect(await received(w1, 5)).toEqual([
      'audit:"a"',
      'orders.eu.paid:{"amount":1}',
      'orders.eu.refund.issued:{"amount":3}',
      'orders.us.paid:{"amount":2}',
      'orders.us.paid:{"amount":9}',
    ]);
    expect(await received(w2, 4)).toEqual([
      'cache.session:{"id":1}',
      'cache.user:{"key":"from w2"}',
      'cache.user:{"key":"u"}',
      'orders.eu.paid:{"amount":1}',
    ]);
    await until(
      () => primarySeen.length,
      (n) => n === 3,
      'the primary received 3',
    );
    expect(primarySeen.sort()).toEqual([
      'orders.eu.paid:1:primary',
      'orders.us.paid:2:primary',
      `orders.us.paid:9:${w1}`,
    ]);
    off();
  });

  it('refuses an invalid pattern in the worker that subscribes (INVALID_ARGUMENT), and one that matches no topic', async () => {
    for (const pattern of ['orders.>.paid', 'cache.us*', 'cache..user', 'users.*']) {
      const error = await rejection(app.bus.call(w1, 'subscribe', pattern));
      expect(error.code).toBe('REMOTE');
      expect(error.cause).toBeInstanceOf(RemoteError);
      expect((error.cause as RemoteError).code).toBe('INVALID_ARGUMENT');
    }
    expect(() =>
      (app.bus.publish as (t: string, p: unknown) => void)('cache.*', { key: 'k' }),
    ).toThrow(BusError);
  });
});
