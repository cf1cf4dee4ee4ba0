/**
 * Waiting for a cluster's first workers: every slot's worker ready, or the reason it will not be.
 *
 * @module
 */
import type { EventEmitter } from 'eventemitter3';
import { BusError } from '../errors.js';
import type { ClusterEvents } from './events.js';
import type { Slots } from './slots.js';

/**
 * @internal Resolves once every slot's worker is ready; rejects with `TIMEOUT` after `timeoutMs`,
 * or with `CLOSED` when a slot reaches its restart limit (workers crashing before they are ready).
 */
export function waitAllReady(
  events: EventEmitter<ClusterEvents, unknown>,
  slots: Slots,
  timeoutMs: number,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const all = slots.slots;
    const notReady = () => all.filter((s) => s.current?.state !== 'ready').length;
    const check = () => {
      if (notReady() === 0) done();
    };
    const onLimit = () =>
      done(
        new BusError(
          'CLOSED',
          'startCluster: workers kept exiting before they were ready (restart limit reached)',
        ),
      );
    const timer = setTimeout(
      () =>
        done(
          new BusError(
            'TIMEOUT',
            `startCluster: ${notReady()} of ${all.length} workers did not connect and become ready within ${timeoutMs} ms (does the worker call connect()?)`,
          ),
        ),
      timeoutMs,
    );
    timer.unref();
    const done = (error?: BusError) => {
      clearTimeout(timer);
      events.off('worker:ready', check);
      events.off('worker:restart-limit', onLimit);
      if (error === undefined) resolve();
      else reject(error);
    };
    events.on('worker:ready', check);
    events.on('worker:restart-limit', onLimit);
    check();
  });
}
