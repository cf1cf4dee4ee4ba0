/**
 * The shapes of the peers extension: one entry of `bus.peers()`, the API, and what travels
 * (`$peers.list`, worker -> hub, answered with the list), with the schema the worker checks it
 * against.
 *
 * @module
 */
import { z } from 'zod';

/** One ready worker of the cluster, as `bus.peers()` lists it. @category Buses */
export interface PeerInfo {
  /** Node's worker id (a call target). */
  readonly workerId: number;
  /** Its stable slot, 0..N-1 (a call target as `{ slot }`). */
  readonly slot: number;
  /** Its process id. */
  readonly pid: number;
}

/** What the peers extension adds to a bus: `peers()`. @category Buses */
export interface PeersApi {
  /**
   * The cluster's ready workers, ascending by slot, then worker id, the calling worker included
   * (when it is ready itself). A worker that is starting (forked, or connected with
   * `manualReady` and not yet `bus.ready()`) or draining (being replaced, scaled down, closed) is
   * not listed. Answered by the primary from its slot table: a snapshot, which the next exit or
   * restart may change.
   *
   * @returns `{ workerId, slot, pid }[]`.
   * @throws never synchronously; rejects with {@link BusError} `CLOSED` once the bus is closed,
   *   `TIMEOUT` when the primary does not answer within the bus's `callTimeoutMs`, `NO_HANDLER`
   *   when the primary runs no peers extension, `PROTOCOL` for an answer of the wrong shape.
   */
  peers(): Promise<PeerInfo[]>;
}

/** @internal The verbs: `$peers.list`. */
export const PeersVerb = { list: 'list' } as const;

/** @internal The answer of `$peers.list`, as the worker checks it. */
export const PeerListSchema = z
  .array(
    z.strictObject({
      workerId: z.number().int().min(1),
      slot: z.number().int().min(0),
      pid: z.number().int().min(1),
    }),
  )
  .max(100_000);
