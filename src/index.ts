/**
 * clusterbus: typed RPC and pub/sub for Node's `cluster`, from one contract.
 *
 * @packageDocumentation
 */
export { type BaseBus, type BusOptions, DEFAULT_CALL_TIMEOUT_MS } from './bus/base.js';
export type { PrimaryCore } from './bus/primary.js';
export type { Subscription } from './bus/pubsub.js';
export type { WorkerCore } from './bus/worker.js';
export type { ClusterConfig } from './config/hub.js';
export type {
  ConfigAck,
  ConfigChangeHandler,
  ConfigChangeInfo,
  ConfigUpdateResult,
} from './config/types.js';
export type { WorkerConfig } from './config/worker.js';
export { type ConnectOptions, connect, type WorkerApis, type WorkerBus } from './connect.js';
export {
  type ConfigInput,
  type ConfigValue,
  type Contract,
  type ContractDef,
  defineContract,
  type EventInput,
  type EventPayload,
  type HandlerInput,
  type HandlerOutput,
  type HandlerResult,
  type HandlerStreamItem,
  type HasInput,
  type MatchingTopics,
  type MethodDef,
  type MethodInput,
  type MethodName,
  type MethodOutput,
  type PatternPayload,
  type Schema,
  type StoreInput,
  type StoreName,
  type StoreValue,
  type StreamItem,
  type StreamMethodName,
  type TopicMatches,
  type TopicName,
  type TopicPattern,
  type UnaryMethodName,
} from './contract.js';
export type { PeerId, Side } from './core/extension.js';
export type { MeshFactory, MeshNode, MeshView } from './core/mesh.js';
export type {
  BusEvents,
  CallAllResult,
  CallArgs,
  CallOptions,
  EventContext,
  Handler,
  HandlerContext,
  NodeTarget,
  Origin,
  SlotTarget,
  StreamArgs,
  StreamOptions,
  Target,
} from './core/types.js';
export type {
  CloseOnDrainOptions,
  DrainableServer,
  DrainHandler,
} from './drain/types.js';
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
export type {
  CallDurations,
  ClusterHealth,
  EventLoopDelay,
  HealthCheckResult,
  HealthOptions,
  HealthReport,
  UnhealthyReason,
  WorkerHealth,
  WorkerState,
} from './health/types.js';
export type { HealthCheck, HealthChecks } from './health/worker.js';
export type {
  JobsApi,
  ScheduleOptions,
  SingletonContext,
  SingletonHandle,
  SingletonJob,
  SingletonOptions,
  TickContext,
  TickJob,
} from './jobs/types.js';
export type {
  HealthBody,
  ManagementInfo,
  ManagementOptions,
  MetricsResponse,
  RestartProgress,
  ScaleProgress,
  StatsBody,
  WorkerStats,
} from './management/types.js';
export type { WorkerMetrics } from './metrics/extension.js';
export {
  createMetricsScraper,
  type MetricsScrape,
  type MetricsScraper,
} from './metrics/scraper.js';
export {
  type AppMetricsMode,
  DEFAULT_COLLECT_TIMEOUT_MS,
  type MetricsOptions,
  type MetricsRegistry,
} from './metrics/types.js';
export type { PeerInfo, PeersApi } from './peers/types.js';

export type { PrimaryBus } from './primary-bus.js';
export { startCluster } from './start-cluster.js';
export type {
  CounterStore,
  DeleteOptions,
  IncrementOptions,
  KeysOptions,
  Lease,
  LockOptions,
  PersistOptions,
  SetOptions,
  StateApi,
  Store,
  StoreCallOptions,
  StoreChange,
  StoreEntry,
  StoreHostOptions,
  StoreLimits,
  StoreOf,
  UpdateOptions,
  Watch,
  WatchOptions,
} from './state/types.js';
export type {
  CloseOptions,
  ClusterApp,
  ClusterEvents,
  DrainReason,
  KillReason,
  ReplaceReason,
  RestartOptions,
  RestartResult,
  ScaleResult,
  SignalOptions,
  SlotRestart,
  StartClusterOptions,
  WorkerExitEvent,
  WorkerInfo,
  WorkerReadyEvent,
} from './supervisor/cluster.js';
export type { LogsMode } from './supervisor/ops-options.js';
/** A worker's thread pools in its health report (the pools themselves: `clusterbus/threads`). */
export type { PoolStats, ThreadStats } from './threads/registry.js';
