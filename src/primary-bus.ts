/**
 * The primary's bus as the app sees it: the hub core with the shared state's API (`store`,
 * `lock`) and the jobs' API (`singleton`, `schedule`) exposed on it. Made by the supervisor for `startCluster`, and by tests over in-memory
 * links.
 *
 * @module
 */

import type { BusOptions } from './bus/options.js';
import { type PrimaryBusHooks, PrimaryCore } from './bus/primary.js';
import type { Contract } from './contract.js';
import { withJobs } from './jobs/extension.js';
import type { JobsApi } from './jobs/types.js';
import { withState } from './state/extension.js';
import type { StateApi } from './state/types.js';

/**
 * The primary's bus, found as `app.bus`: the same `handle`, `call`, `callAll`, `publish`,
 * `subscribe`, `store`, `lock`, `singleton` and `schedule` as a worker's, and the router every
 * worker's messages go through.
 */
export type PrimaryBus<C extends Contract> = PrimaryCore<C> & StateApi<C> & JobsApi;

/** @internal A primary bus (no worker attached yet); the shared state is installed later. */
export function primaryBus<C extends Contract>(
  contract: C,
  options: BusOptions,
  hooks: PrimaryBusHooks,
): PrimaryBus<C> {
  return withJobs(withState<C, PrimaryCore<C>>(new PrimaryCore(contract, options, hooks)));
}
