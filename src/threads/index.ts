/**
 * `clusterbus/threads`: the same typed contract over worker threads. `createPool` in any process
 * (a cluster worker, the primary, a plain script) starts the threads; `connectThread` in each
 * thread gives it a bus to `handle` calls and `subscribe` to events. Values travel by structured
 * clone; `transfer` moves ArrayBuffers and MessagePorts. See docs/threads.md.
 *
 * @module
 */

export { type ConnectThreadOptions, connectThread } from './connect-thread.js';
export type { PoolOptions, RestartBackoffOptions, ThreadCallOptions } from './options.js';
export {
  createPool,
  Pool,
  type PoolEvents,
  type ThreadCallArgs,
  type ThreadCallResult,
  type ThreadTarget,
} from './pool.js';
export { closePools, type PoolStats, poolStats, type ThreadStats } from './registry.js';
export {
  ThreadBus,
  type ThreadBusEvents,
  type ThreadEventContext,
  type ThreadHandler,
  type ThreadHandlerContext,
} from './thread.js';
