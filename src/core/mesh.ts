/**
 * The seam between the hub and a mesh of hubs (several hosts, each a primary with its workers):
 * what a mesh transport (clusterbus/nats) is given by the hub ({@link LocalRoutes}) and what the
 * hub asks of it ({@link MeshRoutes}). The core knows no mesh by name: `startCluster({ mesh })`
 * takes any {@link MeshFactory}.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import type { BusError } from '../errors.js';
import type { Encoded, GatherItem } from '../protocol/envelope.js';
import type { StateHost } from '../state/extension.js';

/** Timeout and abort of one routed call. */
export interface RouteOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/** What the hub offers the mesh: its own workers, for requests and events from other nodes. */
export interface LocalRoutes {
  /**
   * Calls worker `worker` of this node (or `'any'` local worker that handles `method`), payload
   * untouched. Rejects as a local call does (`NO_TARGET`, `NO_HANDLER`, `TARGET_EXITED`, ...).
   */
  call(
    worker: number | 'any',
    method: string,
    payload: Encoded,
    options: RouteOptions,
  ): Promise<Encoded>;
  /** Calls `method` on every connected worker of this node: one item per worker. */
  gather(method: string, payload: Encoded, options: RouteOptions): Promise<GatherItem[]>;
  /** Delivers an event from another node to every local worker and the primary's subscribers. */
  deliver(topic: string, payload: Encoded, source: number): void;
  /** This node's connected workers and the methods each handles, ascending by id. */
  workers(): Array<{ readonly id: number; readonly handles: readonly string[] }>;
  /** Reports what has nobody to reject, on the primary bus's `error` event. */
  report(error: BusError): void;
}

/** What the hub asks of the mesh. */
export interface MeshRoutes {
  /** This node's name. */
  readonly node: string;
  /** `'any'` tries this node's workers first; with false, every `'any'` call goes to the mesh. */
  readonly localFirst: boolean;
  /** Calls worker `worker` on node `node` (another node). */
  call(
    node: string,
    worker: number,
    method: string,
    payload: Encoded,
    options: RouteOptions,
  ): Promise<Encoded>;
  /** Calls one worker of the mesh that handles `method` (NATS queue group). */
  any(method: string, payload: Encoded, options: RouteOptions): Promise<Encoded>;
  /** Calls `method` on every worker of every other node: items carry their node (`o`). */
  gather(method: string, payload: Encoded, options: RouteOptions): Promise<GatherItem[]>;
  /** Publishes an event to every other node (never back to this one). */
  publish(topic: string, payload: Encoded, source: number): void;
}

/** One node of the mesh, as `app.mesh.nodes()` lists it. @category RPC and pub/sub */
export interface MeshNode {
  /** Its name (`natsMesh({ node })` there). */
  readonly node: string;
  /** Whether it is this node. */
  readonly self: boolean;
  /** Its connected workers, with the methods each handles, as its last heartbeat said. */
  readonly workers: ReadonlyArray<{ readonly id: number; readonly handles: readonly string[] }>;
  /** When it was last heard (epoch ms; for this node, now). */
  readonly lastHeardAt: number;
  /** Whether its contract differs from this node's (calls to it reject with `CONTRACT_MISMATCH`). */
  readonly contractMismatch: boolean;
}

/** `app.mesh`: the nodes of the mesh. @category RPC and pub/sub */
export interface MeshView {
  /** The nodes seen and not gone, this one first, then by name. Without a mesh: `[]`. */
  nodes(): MeshNode[];
}

/** One worker's acknowledgement of a config version, as a node reports it to the mesh. */
export interface MeshConfigAck {
  readonly workerId: number;
  readonly slot: number;
  readonly status: 'accepted' | 'refused' | 'failed';
  readonly error?: BusError;
  readonly node?: string;
}

/** What a node's config (`app.config`) is given by the mesh: versions shared by every node. */
export interface MeshConfig {
  /** The version and value the mesh holds now; undefined when none was written yet. */
  current(): { readonly version: number; readonly value: unknown } | undefined;
  /**
   * Writes `value` as the next version (compare-and-set: one more than the latest in the mesh)
   * and resolves with that version. With `ifAbsent`, writes version 1 only if none exists, and
   * resolves with what the mesh holds then.
   */
  claim(value: unknown, ifAbsent?: boolean): Promise<number>;
  /** Sends version `version` to every other node; resolves with their workers' acks. */
  spread(version: number, value: unknown): Promise<MeshConfigAck[]>;
  /**
   * Serves the versions other nodes write: `apply` sends one to this node's workers and resolves
   * with their acks (a version not newer than this node's is acknowledged as it is).
   */
  serve(apply: (version: number, value: unknown) => Promise<MeshConfigAck[]>): void;
}

/** A running mesh, as `startCluster` holds it. */
export interface RunningMesh {
  /** The hub's side of the mesh. */
  readonly routes: MeshRoutes;
  /** Starts routing requests and events between `local` (this node's hub) and the mesh. */
  attach(local: LocalRoutes): void;
  /** The store host that replaces the primary's own (stores and locks shared by every node). */
  readonly stateHost?: StateHost;
  /** Config versions shared by every node (`app.config.update()` on any node). */
  readonly config?: MeshConfig;
  /** The mesh's public API, exposed as `app.mesh`. */
  readonly api: MeshView;
  /** Leaves the mesh (tells the other nodes) and closes its connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * What `startCluster({ mesh })` takes: made by e.g. `natsMesh()` of `clusterbus/nats`.
 * @category RPC and pub/sub
 */
export interface MeshFactory {
  /** This node's name: `bus.node` in the primary and in its workers. */
  readonly node: string;
  /**
   * @internal Connects this node to the mesh. Called by `startCluster` before any worker is
   * forked.
   * @throws rejects with a BusError when the mesh cannot be joined.
   */
  start(contract: Contract, report: (error: BusError) => void): Promise<RunningMesh>;
}

/** The environment variable that tells a worker its node's name. */
export const NODE_ENV = 'CLUSTERBUS_NODE';
