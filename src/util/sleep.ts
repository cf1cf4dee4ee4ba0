/**
 * Waiting: the one abort-aware sleep.
 *
 * @module
 */
import { BusError } from '../errors.js';
import { DeadlineTimer } from './duration.js';

/** Options of {@link sleep}. */
export interface SleepOptions {
  /** What waits, for the message of `ABORTED`: `<what> was aborted`. @default 'the wait' */
  readonly what?: string;
  /** Let the process exit while it waits (the timer is unref'd). @default false */
  readonly unref?: boolean;
}

/**
 * Resolves `ms` ms from now (by the monotonic clock; a wait past Node's timer limit is re-armed,
 * never cut short). Rejects with {@link BusError} `ABORTED`, the signal's reason as its cause, as
 * soon as `signal` fires (at once when it already has). Either way it leaves no timer and no
 * listener on `signal` behind. Never throws: NaN rejects with `INVALID_ARGUMENT`.
 */
export function sleep(ms: number, signal?: AbortSignal, options: SleepOptions = {}): Promise<void> {
  const what = options.what ?? 'the wait';
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(aborted(what, signal));
      return;
    }
    const onAbort = (): void => {
      timer.clear();
      reject(aborted(what, signal!));
    };
    const timer = new DeadlineTimer(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      { ref: options.unref !== true },
    );
    timer.set(performance.now() + Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function aborted(what: string, signal: AbortSignal): BusError {
  return new BusError('ABORTED', `${what} was aborted`, { cause: signal.reason });
}
