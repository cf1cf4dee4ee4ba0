/**
 * clusterbus: typed RPC and pub/sub for Node's `cluster`, from one contract.
 *
 * @packageDocumentation
 */
export { BaseBus, type BusOptions, DEFAULT_CALL_TIMEOUT_MS } from './bus/base.js';
export { PrimaryBus } from './bus/primary.js';
export type {
  BusEvents,
  CallAllResult,
  CallArgs,
  CallOptions,
  EventContext,
  Handler,
  HandlerContext,
  Origin,
  Target,
} from './bus/types.js';
export { type ConnectOptions, connect, WorkerBus } from './bus/worker.js';
export {
  type Contract,
  type ContractDef,
  defineContract,
  type EventInput,
  type EventPayload,
  type HandlerInput,
  type HandlerOutput,
  type HasInput,
  type MethodDef,
  type MethodInput,
  type MethodName,
  type MethodOutput,
  type Schema,
  type TopicName,
} from './contract.js';
export {
  BUS_ERROR_CODES,
  BusError,
  type BusErrorCode,
  type BusErrorJSON,
  type BusErrorOptions,
  type BusIssue,
  RemoteError,
  type RemoteErrorJSON,
} from './errors.js';
export {
  type CloseOptions,
  ClusterApp,
  type ClusterEvents,
  type StartClusterOptions,
  startCluster,
  type WorkerExitEvent,
  type WorkerInfo,
} from './supervisor/cluster.js';
