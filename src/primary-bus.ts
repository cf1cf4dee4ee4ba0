/**
 * The primary's bus as the app sees it: the hub core with the shared state's API (`store`,
 * `lock`), the peers extension's (`peers()`) and the jobs' (`singleton`, `schedule`) exposed on
 * it. Made by the supervisor for `startCluster`, and by tests over in-memory links.
 *
 * @module
 */

import type { BusOptions } from './bus/options.js';
import { type PrimaryBusHooks, PrimaryCore } from './bus/primary.js';
import type { Contract } from './contract.js';
import { withJobs } from './jobs/extension.js';
import type { JobsApi } from './jobs/types.js';
import { withPeers } from './peers/extension.js';
import type { PeersApi } from './peers/types.js';
import { withState } from './state/extension.js';
import type { StateApi } from './state/types.js';

/**
 * The primary's bus, found as `app.bus`: the same `handle`, `call`, `callAll`, `publish`,
 * `subscribe`, `store`, `lock`, `peers`, `singleton` and `schedule` as a worker's, and the router
 * every worker's messages go through.
 * @category Buses
 */
export type PrimaryBus<C extends Contract> = PrimaryCore<C> & StateApi<C> & PeersApi & JobsApi;

/**
 * @internal A primary bus (no worker attached yet); the shared state and the peers extension
 * (`peersHub`, which needs the slot table) are installed later.
 */
export function primaryBus<C extends Contract>(
  contract: C,
  options: BusOptions,
  hooks: PrimaryBusHooks,
): PrimaryBus<C> {
  return withJobs(
    withPeers(withState<C, PrimaryCore<C>>(new PrimaryCore(contract, options, hooks))),
  );
}
