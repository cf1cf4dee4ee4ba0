/**
 * The state extension (stores, locks, persistence) on both sides: `stateExtension(contract,
 * options)` is installed once on every bus. On the hub it serves the store host (host.ts, the hub
 * side) and runs the hub's own client; on a worker it runs the client only (client.ts, store.ts
 * and lease.ts, both sides). Its system names are `$state.<verb>` (protocol.ts).
 *
 * Persistence is loaded before the extension is installed: the composition root awaits
 * `StoreHost.load(contract, config)` (the snapshot, before any worker is forked), then installs
 * `stateExtension(contract, { host })` on the primary's bus; `StoreHost.open(bus, config)` does
 * both in one step. A worker installs `stateExtension(contract)`.
 *
 * @module
 */

import type { Contract, StoreName } from '../contract.js';
import type { Extension, ExtensionContext } from '../core/extension.js';
import { BusError, toBusError } from '../errors.js';
import { StateClient } from './client.js';
import { acquireLock } from './lease.js';
import { STATE } from './protocol.js';
import type { Lease, LockOptions, StateApi, StoreOf } from './types.js';

/**
 * @internal The key of the state API's lock for clusterbus's own reserved lock names
 * (`$singleton.<name>`): `api[systemLock](name, options)`. Not on the public `StateApi`.
 */
export const systemLock: unique symbol = Symbol('clusterbus.systemLock');

/** @internal What `api[systemLock]` is. */
export type SystemLock = (name: string, options?: LockOptions) => Promise<Lease>;

/** The hub side as the extension runs it: a loaded `StoreHost` (host.ts). */
export interface StateHost {
  /** Starts serving the state protocol on the hub's context. */
  serve(ctx: ExtensionContext): void;
  /** Whether it was closed. */
  readonly isClosed: boolean;
  /** Stops serving; rejects with `PERSIST_FAILED` when the last snapshot cannot be written. */
  close(): Promise<void>;
}

/** Options of {@link stateExtension}. */
export interface StateOptions {
  /**
   * Hub only: the store host this bus serves, loaded by `StoreHost.load`. Without it, the hub
   * holds no stores (its own store and lock calls reject with `NO_HANDLER`). On a worker it must
   * be absent.
   */
  readonly host?: StateHost;
}

/**
 * The state extension for `contract`: `bus.store(name)` and `bus.lock(name, options)`.
 *
 * Its close (when the bus closes) ends the client's watches and closes the host if it was not
 * closed before; a last snapshot that fails then is reported (`PERSIST_FAILED`), having nobody
 * to reject. `app.close()` closes the host itself first, to reject with it.
 *
 * @throws {@link BusError} `INVALID_ARGUMENT` when installed: a `host` on a worker's bus, or a
 *   host that already serves a bus.
 */
export function stateExtension<C extends Contract>(
  contract: C,
  options: StateOptions = {},
): Extension<StateApi<C>> {
  const host = options.host;
  return {
    name: STATE,
    install(ctx) {
      if (host !== undefined) {
        if (ctx.side !== 'hub') {
          throw new BusError('INVALID_ARGUMENT', 'state: a store host runs on the hub only');
        }
        host.serve(ctx);
      }
      const client = new StateClient(ctx, contract);
      const api: StateApi<C> & { readonly [systemLock]: SystemLock } = {
        store<S extends StoreName<C>>(name: S): StoreOf<C, S> {
          return client.store(name) as unknown as StoreOf<C, S>;
        },
        lock: (name, lockOptions) => acquireLock(client, name, lockOptions),
        [systemLock]: (name, lockOptions) => acquireLock(client, name, lockOptions, true),
      };
      return {
        api,
        close() {
          client.close();
          if (host === undefined || host.isClosed) return;
          host.close().catch((error: unknown) => ctx.report(toBusError(error, 'PERSIST_FAILED')));
        },
      };
    },
  };
}

/** What {@link withState} needs of a bus: its installed extensions' APIs and who it is. */
export interface StateHolder {
  extensionApi(name: string): unknown;
  readonly self: 'primary' | number;
}

/**
 * Exposes the state extension's API on `bus` (`store`, `lock`), looked up when called: the
 * primary installs the extension after its snapshot is loaded, a worker before its handshake.
 * Without one installed, `store()` throws and `lock()` rejects with `NO_HANDLER`.
 */
export function withState<C extends Contract, B extends StateHolder>(bus: B): B & StateApi<C> {
  const api = (): StateApi<C> => {
    const state = bus.extensionApi('state') as StateApi<C> | undefined;
    if (state !== undefined) return state;
    const who = bus.self === 'primary' ? 'the primary' : `worker ${bus.self}`;
    throw new BusError('NO_HANDLER', `${who} has no state extension`);
  };
  return Object.defineProperties(bus, {
    store: { value: (name: StoreName<C>) => api().store(name) },
    lock: {
      value: async (name: string, options?: LockOptions): Promise<Lease> =>
        api().lock(name, options),
    },
  }) as B & StateApi<C>;
}
