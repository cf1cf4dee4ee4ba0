/**
 * The peers extension: `bus.peers()` lists the cluster's ready workers, in a worker and on the
 * primary's bus, without a method of the app's own. The hub answers `$peers.list` (callable by
 * any worker) from what its `describe` source says of each ready peer (the supervisor's slot
 * table); a worker calls it and checks the answer.
 *
 * @module
 */
import type { Extension, PeerId } from '../core/extension.js';
import { BusError } from '../errors.js';
import { type PeerInfo, PeerListSchema, type PeersApi, PeersVerb } from './types.js';

export type { PeerInfo, PeersApi } from './types.js';

/** The extension's name: its system names are `$peers.<verb>`. */
const NAME = 'peers';

/**
 * @internal What the hub knows of peer `id`: its slot and pid when it is a ready worker, else
 * undefined (starting, draining, gone).
 */
export type DescribePeer = (
  id: PeerId,
) => { readonly slot: number; readonly pid: number } | undefined;

/** @internal The hub's side: serves `$peers.list` to every worker; `peers()` on the hub itself. */
export function peersHub(describe: DescribePeer): Extension<PeersApi> {
  return {
    name: NAME,
    install(ctx) {
      let closed = false;
      const list = (): PeerInfo[] =>
        ctx.peers
          .ids()
          .flatMap((workerId) => {
            const known = describe(workerId);
            return known === undefined ? [] : [{ workerId, slot: known.slot, pid: known.pid }];
          })
          .sort((a, b) => a.slot - b.slot || a.workerId - b.workerId);
      ctx.handle(PeersVerb.list, () => list(), { callers: 'any' });
      const api: PeersApi = {
        peers: () =>
          closed
            ? Promise.reject(new BusError('CLOSED', 'peers(): the bus is closed'))
            : Promise.resolve(list()),
      };
      return {
        api,
        close: () => {
          closed = true;
        },
      };
    },
  };
}

/** @internal The worker's side: `peers()` asks the hub and checks its answer. */
export function peersWorker(): Extension<PeersApi> {
  return {
    name: NAME,
    install(ctx) {
      const api: PeersApi = {
        async peers() {
          const answer = await ctx.call('primary', PeersVerb.list, undefined);
          const parsed = PeerListSchema.safeParse(answer);
          if (!parsed.success) {
            throw new BusError('PROTOCOL', 'peers(): the primary answered with a malformed list');
          }
          return parsed.data;
        },
      };
      return { api };
    },
  };
}

/** What {@link withPeers} needs of a bus: its installed extensions' APIs and who it is. */
export interface PeersHolder {
  extensionApi(name: string): unknown;
  readonly self: 'primary' | number;
}

/**
 * Exposes the peers extension's API on `bus` (`peers()`), looked up when called: without one
 * installed, it rejects with `NO_HANDLER`.
 */
export function withPeers<B extends PeersHolder>(bus: B): B & PeersApi {
  return Object.defineProperty(bus, 'peers', {
    value: (): Promise<PeerInfo[]> => {
      const api = bus.extensionApi(NAME) as PeersApi | undefined;
      if (api !== undefined) return api.peers();
      const who = bus.self === 'primary' ? 'the primary' : `worker ${bus.self}`;
      return Promise.reject(new BusError('NO_HANDLER', `${who} has no peers extension`));
    },
  }) as B & PeersApi;
}
