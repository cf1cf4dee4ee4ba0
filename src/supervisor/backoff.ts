/**
 * Restart intensity and exponential backoff for one slot, as Erlang/OTP supervisors bound crash
 * loops: at most `maxRestarts` restarts within `windowMs`; the n-th restart within the window
 * waits `initialMs × 2^(n-2)` (the first is immediate), capped at `maxMs`. Restarts older than
 * the window are forgotten, so a worker that stays up for `windowMs` resets its slot's backoff.
 * Pure: time is passed in.
 *
 * @module
 */

/** The bounds of {@link RestartWindow}. */
export interface BackoffOptions {
  /** At most this many restarts within `windowMs`. */
  readonly maxRestarts: number;
  /** The window, in ms. */
  readonly windowMs: number;
  /** Delay of the second restart within the window, in ms; doubled for each further one. */
  readonly initialMs: number;
  /** The longest delay, in ms. */
  readonly maxMs: number;
}

/** What {@link RestartWindow.attempt} decides. */
export type RestartDecision =
  | {
      /** Restart, after `delayMs`. */
      readonly restart: true;
      /** Wait this long before forking, in ms (0: at once). */
      readonly delayMs: number;
      /** Restarts within the window, this one included. */
      readonly restarts: number;
    }
  | {
      /** The limit is reached: stop restarting this slot. */
      readonly restart: false;
      /** Restarts within the window (= `maxRestarts`). */
      readonly restarts: number;
    };

/** The backoff delay of the `n`-th restart within the window (1-based), in ms. */
export function backoffDelay(n: number, initialMs: number, maxMs: number): number {
  if (n <= 1) return 0;
  // 2 ** 31 already exceeds any timer; cap the exponent so the product stays finite.
  return Math.min(maxMs, initialMs * 2 ** Math.min(n - 2, 31));
}

/** One slot's recent restarts. */
export class RestartWindow {
  private readonly times: number[] = [];

  constructor(private readonly options: BackoffOptions) {}

  /** Restarts within the window ending at `now`. */
  count(now: number): number {
    this.prune(now);
    return this.times.length;
  }

  /** Decides whether (and after how long) to restart at `now`, and records it if so. */
  attempt(now: number): RestartDecision {
    this.prune(now);
    const { maxRestarts, initialMs, maxMs } = this.options;
    if (this.times.length >= maxRestarts) return { restart: false, restarts: this.times.length };
    this.times.push(now);
    const n = this.times.length;
    return { restart: true, delayMs: backoffDelay(n, initialMs, maxMs), restarts: n };
  }

  /** Forgets every restart (a slot started again on purpose). */
  reset(): void {
    this.times.length = 0;
  }

  private prune(now: number): void {
    const from = now - this.options.windowMs;
    while (this.times.length > 0 && this.times[0]! <= from) this.times.shift();
  }
}
