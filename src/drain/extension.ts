/**
 * The drain extension: the hub drains a worker before it stops it (rolling restart, replacement,
 * scale-down, close), and the worker runs its drain handlers and lets its calls settle first.
 * Its one verb, `$drain.start` (hub -> worker), answers once the worker is drained.
 *
 * @module
 */
import type { Extension } from '../core/extension.js';
import { DrainHub } from './hub.js';
import { DrainVerb } from './types.js';
import { WorkerDrain } from './worker.js';

export type { DrainHub } from './hub.js';
export type { WorkerDrain } from './worker.js';

/** The extension's name: its system names are `$drain.<verb>`. */
const NAME = 'drain';

/** @internal The hub's side: {@link DrainHub} (`drain(target, deadline)`, `setDraining`). */
export function drainHub(): Extension<DrainHub> {
  return { name: NAME, install: (ctx) => ({ api: new DrainHub(ctx) }) };
}

/**
 * @internal The worker's side: {@link WorkerDrain} (`bus.onDrain`, `bus.closeOnDrain`,
 * `bus.draining`) and the `$drain.start` handler (the hub's only).
 *
 * @param inFlight - the calls in flight on the worker's bus (served and awaited).
 */
export function drainWorker(inFlight: () => number): Extension<WorkerDrain> {
  return {
    name: NAME,
    install(ctx) {
      const drain = new WorkerDrain(inFlight, (error) => ctx.report(error));
      ctx.handle(DrainVerb.start, async () => {
        await drain.drain();
        return { drained: true };
      });
      return { api: drain };
    },
  };
}
