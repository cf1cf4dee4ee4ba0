/**
 * The hub's side of a mesh (several hosts, each a primary with its workers): what the hub offers
 * the mesh transport, {@link LocalRoutes} — its workers, for the requests and events of other
 * nodes. The routing of this node's own requests through the mesh is in hub-router.ts.
 *
 * @module
 */
import type { LocalRoutes } from '../core/mesh.js';
import type { BusError } from '../errors.js';
import { type Encoded, Kind, PRIMARY_ID } from '../protocol/envelope.js';
import type { HubRouter } from './hub-router.js';

/** What the routes need of the primary's bus besides its router. */
export interface MeshHost {
  /** Delivers an event to the primary's own subscribers (held while the cluster starts). */
  deliver(topic: string, payload: Encoded, source: number): void;
  report(error: BusError): void;
}

/** This hub's routes, as the mesh uses them for requests and events from other nodes. */
export function meshLocalRoutes(router: HubRouter, host: MeshHost): LocalRoutes {
  return {
    call: (worker, method, payload, options) => {
      try {
        const dest = worker === 'any' ? router.pickAny(method) : router.connectedEntry(worker);
        return router.forward(dest, method, payload, PRIMARY_ID, options);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    gather: (method, payload, options) =>
      router.gather(method, payload, options.timeoutMs, options.signal, PRIMARY_ID),
    deliver: (topic, payload, source) => {
      router.fanOut({ k: Kind.event, m: topic, s: source, p: payload.p, q: payload.q }, undefined);
      host.deliver(topic, payload, source);
    },
    workers: () =>
      router.connectedWorkers().map((id) => ({
        id,
        handles: [...(router.workers.get(id)?.handles ?? [])],
      })),
    report: (error) => host.report(error),
  };
}
