/**
 * Durations: Node's timer ceiling, the one check of a duration option against it, and the timers
 * that keep a deadline of any length (Node fires a `setTimeout` of more than 2^31 − 1 ms after
 * 1 ms): {@link DeadlineTimer}, one timer for the earliest of many deadlines, and {@link deadline},
 * one call at one time.
 *
 * @module
 */
import { BusError } from '../errors.js';
import { describeValue } from './describe.js';

/** Node's timer limit, in ms (2^31 − 1, about 24.8 days): the longest delay `setTimeout` keeps. */
export const MAX_TIMER_MS = 2_147_483_647;

/** What {@link checkDurationMs} accepts besides a number of ms > 0 and <= {@link MAX_TIMER_MS}. */
export interface DurationRule {
  /** Accept 0 too. @default false */
  readonly zero?: boolean;
  /**
   * Accept any finite duration, past {@link MAX_TIMER_MS}: for durations no timer serves directly
   * (store TTLs, kept by a {@link DeadlineTimer} that re-arms). @default false
   */
  readonly unbounded?: boolean;
}

/**
 * Checks a duration option: a number of ms, > 0 (or >= 0 with `zero`), at most
 * {@link MAX_TIMER_MS} (or any finite number with `unbounded`).
 *
 * @param what - the operation and option, for the message (e.g. `lock: ttlMs`).
 * @returns `value`.
 * @throws {@link BusError} `INVALID_ARGUMENT` otherwise (NaN, Infinity, a string, too large).
 */
export function checkDurationMs(value: unknown, what: string, rule: DurationRule = {}): number {
  const max = rule.unbounded === true ? Number.MAX_VALUE : MAX_TIMER_MS;
  const atLeast = rule.zero === true ? '>= 0' : '> 0';
  if (typeof value !== 'number' || !(rule.zero === true ? value >= 0 : value > 0) || value > max) {
    throw new BusError(
      'INVALID_ARGUMENT',
      rule.unbounded === true
        ? `${what} must be a finite number of ms ${atLeast}, got ${describeValue(value)}`
        : `${what} must be a number of ms ${atLeast} and <= ${MAX_TIMER_MS} (about 24.8 days), got ${describeValue(value)}`,
    );
  }
  return value;
}

/** A clock, in ms: `performance.now()` (monotonic) or `Date.now()` (epoch). */
export type Clock = () => number;

/** Options of a {@link DeadlineTimer}. */
export interface DeadlineTimerOptions {
  /** The clock the deadlines are read on. @default performance.now() */
  readonly now?: Clock;
  /** Keep the process alive while armed (a wait someone awaits). @default false: unref'd */
  readonly ref?: boolean;
}

/**
 * One timer for the earliest of many deadlines (nats.js's mux, not a timer per call): `arm(at)`
 * moves it earlier, `set(at)` anywhere. It calls `onDue` once per arming, from a timer, never
 * before its deadline by its clock: a deadline past {@link MAX_TIMER_MS} is served by re-arming,
 * and a timer that fires early (Node's loop time is cached) re-arms for what is left. It is
 * disarmed when `onDue` runs, which may arm it again. Unref'd unless `ref`.
 */
export class DeadlineTimer {
  private timer: NodeJS.Timeout | undefined;
  private due = Number.POSITIVE_INFINITY;
  private readonly now: Clock;
  private readonly ref: boolean;

  constructor(
    private readonly onDue: () => void,
    options: DeadlineTimerOptions = {},
  ) {
    // Read at each call, not bound now, so that fake timers installed later are seen.
    this.now = options.now ?? (() => performance.now());
    this.ref = options.ref === true;
  }

  /** The deadline it is armed for, by its clock; `Infinity` when disarmed. */
  get at(): number {
    return this.due;
  }

  /** Arms for `at` if that is earlier than the current deadline (`Infinity`: no change). */
  arm(at: number): void {
    if (at < this.due) this.set(at);
  }

  /**
   * Arms for exactly `at`, earlier or later than before (`Infinity`: disarms).
   *
   * @throws {@link BusError} `INVALID_ARGUMENT` for NaN.
   */
  set(at: number): void {
    if (Number.isNaN(at)) throw new BusError('INVALID_ARGUMENT', 'a deadline cannot be NaN');
    if (at === this.due) return;
    this.clearTimer();
    this.due = at;
    if (at !== Number.POSITIVE_INFINITY) this.start(at - this.now());
  }

  /** Disarms (idempotent). */
  clear(): void {
    this.clearTimer();
    this.due = Number.POSITIVE_INFINITY;
  }

  private start(left: number): void {
    this.timer = setTimeout(this.fire, Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(left))));
    if (!this.ref) this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    const left = this.due - this.now();
    if (left > 0) {
      this.start(left);
      return;
    }
    this.due = Number.POSITIVE_INFINITY;
    this.onDue();
  };
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
  const timer = new DeadlineTimer(fn);
  timer.set(performance.now() + Math.max(0, delayMs));
  return timer;
}
