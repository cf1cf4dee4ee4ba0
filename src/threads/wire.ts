/**
 * What the pool and its threads say besides the core's frames, and the flow limits of the
 * thread link. The frames are the core's envelope (`protocol/envelope.ts`): the thread says
 * `hello` (pid, contract hash), the pool answers `welcome` (`w`: the thread's index, or `e`: a
 * refusal), the thread says `ready` (its methods) one macrotask after `connectThread` resolved;
 * then `req`/`res`/`err`/`cancel` and `evt`, as on the cluster's links.
 *
 * @module
 */
import { DEFAULT_FLOW_LIMITS, type FlowLimits } from '../protocol/peer.js';

/** The pool's own one-way messages (event frames under a `$thread.` name). */
export const ThreadVerb = {
  /**
   * thread -> pool: the handler of cancelled request `p` (its id) has returned. Until then the
   * call counts against its thread, and after `abortGraceMs` the thread is replaced.
   */
  settled: '$thread.settled',
} as const;

/**
 * The thread link's flow limits, both sides: the outbox hands each frame to the link at once
 * (`maxFrames: 1`), never holding any back (`postMessage` has no write completion to wait for).
 * The pool's link posts each call as it is issued, so its input is copied then, as the cluster
 * bus snapshots it. The thread's link coalesces what it sends into one `postMessage`, for at
 * most `MAX_HOLD_MS` (`PortLink`'s `coalesce`): Node emits each message of a port in its own
 * callback, so a tick-based flush would post the answers one by one.
 */
export const THREAD_FLOW_LIMITS: FlowLimits = {
  ...DEFAULT_FLOW_LIMITS,
  maxFrames: 1,
  maxUnwritten: Number.POSITIVE_INFINITY,
};
