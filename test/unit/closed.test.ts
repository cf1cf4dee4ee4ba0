/** A closed bus refuses new handlers and subscribers (`CLOSED`), in the primary and in workers. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { BaseBus } from '../../src/bus/base.js';
import { defineContract } from '../../src/index.js';
import { harnessPerTest } from './helpers.js';

const contract = defineContract({
  methods: { add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() } },
  events: { tick: z.object({ n: z.number() }) },
});
type C = typeof contract;

const start = harnessPerTest(contract);

/** Asserts that `handle` and `subscribe` throw `CLOSED` synchronously and register nothing. */
function expectRefused(bus: BaseBus<C>): void {
  const closed = expect.objectContaining({ name: 'BusError', code: 'CLOSED' });
  expect(() => bus.handle('add', ({ a, b }) => a + b)).toThrow(closed);
  expect(() => bus.subscribe('tick', () => {})).toThrow(closed);
  expect(() => bus.handle('add', ({ a, b }) => a + b)).toThrow(/handle 'add': the bus is closed/);
  expect(() => bus.subscribe('tick', () => {})).toThrow(/subscribe 'tick': the bus is closed/);
  expect(bus.handlers.has('add')).toBe(false);
  expect(bus.subscribers.has('tick')).toBe(false);
}

describe('handle() and subscribe() on a closed bus (regressions)', () => {
  it('throw CLOSED in the primary, from the moment close() is called', async () => {
    const h = await start(1);
    const closing = h.primary.close();
    expectRefused(h.primary);
    await closing;
    expectRefused(h.primary);
  });

  it('throw CLOSED in a worker, closed by itself or by losing its primary', async () => {
    const h = await start(2);
    const [closedByItself, orphaned] = [h.workers[0]!, h.workers[1]!];
    await closedByItself.close();
    expectRefused(closedByItself);
    h.kill(1);
    await orphaned.closed;
    expectRefused(orphaned);
  });

  it('still unregister what was registered before the close, without throwing', async () => {
    const h = await start(1);
    const worker = h.workers[0]!;
    const offHandler = worker.handle('add', ({ a, b }) => a + b);
    const offSubscriber = worker.subscribe('tick', () => {});
    await worker.close();
    expect(() => {
      offHandler();
      offSubscriber();
    }).not.toThrow();
  });
});
