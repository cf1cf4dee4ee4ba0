/**
 * The config extension: the cluster's versioned config, held by the hub and applied by every
 * worker. Its one verb, `$config.apply` (hub -> worker), sends a new version; the welcome's
 * `config` part gives a worker the current one before its `connect()` resolves.
 *
 * @module
 */
import type { Contract, Schema } from '../contract.js';
import type { Extension } from '../core/extension.js';
import { toBusError } from '../errors.js';
import { ClusterConfig, type ClusterConfigDeps } from './hub.js';
import { ConfigVerb } from './types.js';
import { WorkerConfig } from './worker.js';

export { type ClusterConfig, loadInitialConfig } from './hub.js';
export type { WorkerConfig } from './worker.js';

/** The extension's name: its system names are `$config.<verb>`. */
const NAME = 'config';

/**
 * @internal The hub's side: `app.config` (`current`, `version`, `update`, `reload`), welcoming
 * each worker with the current version.
 *
 * @param initial - the initial config from `loadInitialConfig` (parsed value, and the raw one
 *   workers are sent), or undefined for a contract without a config schema.
 */
export function configHub<C extends Contract>(
  contract: C,
  deps: ClusterConfigDeps,
  initial: { readonly value: unknown; readonly raw: unknown } | undefined,
): Extension<ClusterConfig<C>> {
  return {
    name: NAME,
    install(ctx) {
      const config = new ClusterConfig(ctx, contract, deps, initial);
      return { api: config, welcome: (id) => config.welcome(id) };
    },
  };
}

/**
 * @internal The worker's side: `bus.config` (`current`, `version`, `onChange`), set from the
 * welcome (`VALIDATION` fails `connect()`), and the `$config.apply` handler (the hub's only).
 */
export function configWorker<C extends Contract>(
  schema: Schema | undefined,
): Extension<WorkerConfig<C>> {
  return {
    name: NAME,
    install(ctx) {
      const config = new WorkerConfig<C>(schema, () => `worker ${ctx.self}`);
      ctx.handle(ConfigVerb.apply, (input) => config.apply(input));
      return {
        api: config,
        welcomed: (data) => {
          try {
            config.init(data);
            return undefined;
          } catch (error) {
            return toBusError(error, 'PROTOCOL');
          }
        },
      };
    },
  };
}
