/**
 * The shapes of the drain extension: a worker's drain handler, the servers `closeOnDrain` takes,
 * and what travels (`$drain.start`).
 *
 * @module
 */
import type * as http from 'node:http';
import type * as https from 'node:https';

/**
 * A drain handler: stop taking new work and finish what is in flight; may be async.
 * @category Lifecycle
 */
export type DrainHandler = () => unknown;

/** An HTTP(S) server that `bus.closeOnDrain(server)` can close gracefully. @category Lifecycle */
export type DrainableServer = http.Server | https.Server;

/** Options of `bus.closeOnDrain(server)`. @category Lifecycle */
export interface CloseOnDrainOptions {
  /**
   * Once draining, keep-alive connections idle for this many ms are closed (clients sending
   * requests get `Connection: close` on their next response and reconnect elsewhere instead).
   * @default 1_000
   */
  readonly idleGraceMs?: number;
}

/**
 * @internal The drain extension's verbs: `$drain.start`, hub -> worker, answered with
 * `{ drained: true }` once the worker's drain handlers and its own calls have settled.
 */
export const DrainVerb = { start: 'start' } as const;
