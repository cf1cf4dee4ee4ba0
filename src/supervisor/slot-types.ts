/**
 * The shapes of the slot table (src/supervisor/slots.ts): a worker process's record from fork to
 * exit, a stable slot, an early exit, and what the slots tell their owner.
 *
 * @module
 */
import type { Worker } from 'node:cluster';
import type { BusError } from '../errors.js';
import type { WorkerState } from '../health/types.js';
import type { RestartWindow } from './backoff.js';
import type { StderrTail } from './stderr-tail.js';

/**
 * How far a worker got in the handshake: nothing heard (`none`), its hello was answered
 * (`welcomed`), or its hello was refused (`refused`, a contract mismatch).
 */
export type HelloState = 'none' | 'welcomed' | 'refused';

/** One worker process, from fork to exit. */
export interface WorkerRecord {
  readonly worker: Worker;
  readonly id: number;
  readonly slot: Slot;
  state: WorkerState;
  /** The primary asked it to go (drain, close): its exit is not a crash. */
  planned: boolean;
  readonly forkedAt: number;
  /** Resolves when it is ready; rejects if it exits first. */
  readonly ready: Promise<void>;
  /** Resolves when its process has exited. */
  readonly exited: Promise<void>;
  /** The drain in progress, if any. */
  draining: Promise<void> | undefined;
  /** SIGKILL was sent. */
  killed: boolean;
  /** How far its handshake got (for the message of a startup that times out). */
  hello: HelloState;
  /** Its stderr: forwarded to the primary's, the last lines kept until it exits. */
  readonly stderr: StderrTail;
  /** @internal */ markReady: () => void;
  /** @internal */ markExited: (error: BusError) => void;
}

/** A stable slot: its worker, the one replacing it, its restart history. */
export interface Slot {
  readonly index: number;
  /** The worker serving this slot (starting or ready); `{ slot }` targets resolve to it. */
  current: WorkerRecord | undefined;
  /** A replacement being started, promoted to `current` once ready. */
  next: WorkerRecord | undefined;
  readonly restarts: RestartWindow;
  /** Restarts stopped by the restart limit. */
  stopped: boolean;
  /** Removed by a scale-down. */
  retired: boolean;
  /** A pending backoff restart. */
  timer: NodeJS.Timeout | undefined;
  /** Replacements of this slot, one at a time. */
  busy: Promise<unknown>;
}

/**
 * A slot's serving worker exited before it was ready, without being asked to: what the startup
 * needs to explain it.
 */
export interface EarlyExit {
  readonly slot: number;
  readonly workerId: number;
  /** The exit code, or null when killed by a signal. */
  readonly code: number | null;
  /** The signal that killed it, or null. */
  readonly signal: string | null;
  /** The last lines it wrote to stderr, once its pipe has closed. */
  readonly stderr: Promise<string>;
  /** How far its handshake got. */
  readonly hello: HelloState;
  /** Why the slot will not get a new worker (`restart: false`, or the restart limit), if so. */
  readonly stop: 'restart-off' | 'restart-limit' | undefined;
  /** The slot's restarts within `restartWindowMs` (ms), for the restart limit's message. */
  readonly restarts: number;
  readonly windowMs: number;
}

/** What the slots tell their owner beyond events. */
export interface SlotHooks {
  /** A worker became ready (after `worker:ready`). */
  ready(record: WorkerRecord): void;
  /** A worker is draining: stop pinging it. */
  retire(record: WorkerRecord): void;
  /** A worker exited: forget it. */
  gone(record: WorkerRecord): void;
}
