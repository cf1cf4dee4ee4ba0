/**
 * Durations: the one check of a duration option against Node's timer limit, and a timer that
 * keeps a deadline of any length (Node fires a `setTimeout` of more than 2^31 − 1 ms after 1 ms).
 *
 * @module
 */
import { BusError } from '../errors.js';

/** Node's timer limit, in ms (2^31 − 1, about 24.8 days): the longest delay `setTimeout` keeps. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Checks a duration option: a number of ms, > 0 (or >= 0 with `zero`), at most
 * {@link MAX_TIMER_MS}.
 *
 * @param what - the operation and option, for the message (e.g. `lock: ttlMs`).
 * @returns `value`.
 * @throws {@link BusError} `INVALID_ARGUMENT` otherwise (NaN, Infinity, a string, too large).
 */
export function checkDurationMs(value: unknown, what: string, zero = false): number {
  if (typeof value !== 'number' || !(zero ? value >= 0 : value > 0) || value > MAX_TIMER_MS) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `${what} must be a number of ms ${zero ? '>= 0' : '> 0'} and <= ${MAX_TIMER_MS} (about 24.8 days), got ${String(value)}`,
    );
  }
  return value;
}

/** A running {@link deadline}: `clear()` stops it (idempotent). */
export interface Deadline {
  clear(): void;
}

/**
 * Calls `fn` once, `delayMs` ms from now (by the monotonic clock), however long that is: a delay
 * past {@link MAX_TIMER_MS} is served by re-arming, never by firing early. Always from a timer
 * (never synchronously, even for 0); the timer is unref'd. `Infinity` never fires.
 *
 * @throws {@link BusError} `INVALID_ARGUMENT` for NaN (callers check their options first).
 */
export function deadline(fn: () => void, delayMs: number): Deadline {
  if (Number.isNaN(delayMs)) throw new BusError('INVALID_ARGUMENT', 'a delay cannot be NaN');
  const at = performance.now() + Math.max(0, delayMs);
  let timer: NodeJS.Timeout | undefined;
  const arm = (left: number): void => {
    timer = setTimeout(fire, Math.min(MAX_TIMER_MS, Math.ceil(left)));
    timer.unref();
  };
  const fire = (): void => {
    const left = at - performance.now();
    if (left > 0) {
      arm(left);
      return;
    }
    timer = undefined;
    fn();
  };
  arm(Math.max(0, delayMs));
  return {
    clear() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
