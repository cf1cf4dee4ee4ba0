/**
 * `clusterbus/nats`: one contract and one API across hosts, over NATS and JetStream. Each
 * host's primary joins the mesh with `startCluster({ contract, mesh: natsMesh({ servers, node })
 * })`; see docs/nats.md. Needs the optional peers `@nats-io/transport-node`, `@nats-io/jetstream`
 * and `@nats-io/kv` (3.x).
 *
 * @module
 */
export type { MeshNode, MeshView } from '../core/mesh.js';
export type { NodeTarget } from '../core/types.js';
export { natsMesh } from './mesh.js';
export type { CasMode, NatsMeshOptions } from './options.js';
