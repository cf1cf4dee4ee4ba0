/**
 * What the tests may reach beyond the public API: the bus core's classes, the composition
 * factories, the extensions and the in-memory transport. Not in the package's `exports`: a user
 * of `clusterbus` cannot import it, and nothing here is promised to stay.
 *
 * @module
 */
export { BaseBus } from './bus/base.js';
export { LocalLoop } from './bus/local-loop.js';
export { type PrimaryBusHooks, PrimaryCore } from './bus/primary.js';
export { ReportSink } from './bus/report.js';
export { WorkerCore } from './bus/worker.js';
export { type WorkerApis, type WorkerBus, workerBus } from './connect.js';
export type { Extension, ExtensionContext, Installed, Peers } from './core/extension.js';
export { HUB_ID } from './core/extension.js';
export { type PrimaryBus, primaryBus } from './primary-bus.js';
export { checkEncoded, decode, encode } from './protocol/codec.js';
export { Kind, MARKER } from './protocol/envelope.js';
export { Peer } from './protocol/peer.js';
export { stateExtension } from './state/extension.js';
export { StoreHost } from './state/host.js';
export { memoryPair } from './transport/memory.js';
