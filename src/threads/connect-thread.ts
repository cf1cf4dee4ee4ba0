/**
 * `connectThread(contract)`: in a thread `createPool` started, the handshake with the pool over
 * `parentPort`, and the {@link ThreadBus} it resolves with.
 *
 * @module
 */
import { isMainThread, parentPort } from 'node:worker_threads';
import type { Contract } from '../contract.js';
import { BusError } from '../errors.js';
import { checkDurationMs } from '../util/duration.js';
import { ThreadBus } from './thread.js';

let connected = false;

/** Options of {@link connectThread}. */
export interface ConnectThreadOptions {
  /**
   * Reject with `TIMEOUT` if the pool has not welcomed the thread within this many ms (a thread
   * started by something other than `createPool`).
   * @default 30_000
   */
  readonly timeoutMs?: number;
}

/**
 * Connects this worker thread to the pool that started it (`createPool`), over `parentPort`, and
 * resolves with its bus once the pool has accepted it (same contract). The pool routes calls to
 * the thread one macrotask after that, so handlers registered right after `await connectThread`
 * are in place.
 *
 * @param contract - the contract the pool was made with (the same `defineContract` value).
 * @throws never synchronously; rejects with a `BusError` `INVALID_ARGUMENT` outside a
 *   worker thread, when called twice in one thread, or for a bad option; `CONTRACT_MISMATCH` when
 *   the pool's contract differs; `TIMEOUT` when no pool welcomes it within `timeoutMs`.
 */
export async function connectThread<C extends Contract>(
  contract: C,
  options: ConnectThreadOptions = {},
): Promise<ThreadBus<C>> {
  const timeoutMs =
    options.timeoutMs === undefined
      ? 30_000
      : checkDurationMs(options.timeoutMs, 'connectThread: timeoutMs');
  if (typeof contract?.methods?.has !== 'function') {
    throw new BusError('INVALID_ARGUMENT', 'connectThread: contract must come from defineContract');
  }
  if (isMainThread || parentPort === null) {
    throw new BusError(
      'INVALID_ARGUMENT',
      'connectThread: not in a worker thread (call it in the file createPool starts)',
    );
  }
  if (connected)
    throw new BusError('INVALID_ARGUMENT', 'connectThread: this thread is already connected');
  connected = true;
  const bus = new ThreadBus(contract, parentPort);
  try {
    await bus.handshake(timeoutMs);
  } catch (error) {
    bus.detach(error as BusError);
    connected = false;
    throw error;
  }
  return bus;
}
