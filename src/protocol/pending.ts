/**
 * The one object that owns every outbound request of a link until it settles: on its response,
 * its error, its timeout, its caller's abort, the peer's exit, or close. One timer serves every
 * deadline (armed for the earliest), so a call costs no timer of its own.
 *
 * @module
 */
import { BusError, type BusErrorCode } from '../errors.js';
import { DeadlineTimer } from '../util/duration.js';
import type { ResponseFrame } from './envelope.js';

/** What {@link PendingCalls.add} needs to know of one request. */
export interface PendingOptions {
  /** Called once with the response frame. */
  readonly resolve: (frame: ResponseFrame) => void;
  /** Called once with the error. */
  readonly reject: (error: BusError) => void;
  /** The method, for messages. */
  readonly method: string;
  /** Who answers, for messages: a worker id, or a description such as `the primary`. */
  readonly to: number | string;
  /** What kind of request, for messages. @default 'call' */
  readonly what?: string | undefined;
  /** Reject with `TIMEOUT` after this many ms (absent: no deadline). */
  readonly timeoutMs?: number | undefined;
  /** Reject with `ABORTED` when this fires. */
  readonly signal?: AbortSignal | undefined;
}

/** `call 'add' to worker 2`: built only when a message needs it. */
export function describeRequest(opts: PendingOptions): string {
  const to = typeof opts.to === 'number' ? `worker ${opts.to}` : opts.to;
  return `${opts.what ?? 'call'} '${opts.method}' to ${to}`;
}

interface Entry {
  readonly opts: PendingOptions;
  /** performance.now() deadline, Infinity for none. */
  readonly deadline: number;
  onAbort: (() => void) | undefined;
}

/** Outbound requests of one link, by id. */
export class PendingCalls {
  private readonly entries = new Map<number, Entry>();

  /** @param onGiveUp - told when a request ends by timeout or abort, to send the peer a cancel. */
  constructor(private readonly onGiveUp?: (id: number) => void) {}

  /** Armed for the earliest deadline (re-armed past Node's timer limit, unref'd). */
  private readonly timer = new DeadlineTimer(() => this.sweep());

  /** How many requests are pending. */
  get size(): number {
    return this.entries.size;
  }

  /** Registers request `id`. The caller must not have sent it if the signal is already aborted. */
  add(id: number, opts: PendingOptions): void {
    const deadline =
      opts.timeoutMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + opts.timeoutMs;
    const entry: Entry = { opts, deadline, onAbort: undefined };
    if (opts.signal !== undefined) {
      const signal = opts.signal;
      entry.onAbort = () => {
        this.fail(id, 'ABORTED', `${describeRequest(opts)} was aborted`, signal.reason);
      };
      signal.addEventListener('abort', entry.onAbort, { once: true });
    }
    this.entries.set(id, entry);
    this.timer.arm(deadline);
  }

  /** Times out every entry past its deadline and re-arms for the next one. */
  private sweep(): void {
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    const expired: number[] = [];
    for (const [id, e] of this.entries) {
      if (e.deadline <= now) expired.push(id);
      else if (e.deadline < next) next = e.deadline;
    }
    for (const id of expired) {
      const opts = this.entries.get(id)?.opts;
      if (opts !== undefined)
        this.fail(id, 'TIMEOUT', `${describeRequest(opts)} timed out after ${opts.timeoutMs} ms`);
    }
    if (this.entries.size > 0) this.timer.arm(next);
  }

  private take(id: number): PendingOptions | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    this.entries.delete(id);
    if (entry.onAbort !== undefined) entry.opts.signal?.removeEventListener('abort', entry.onAbort);
    // The timer stays armed when the last entry goes (re-arming it per call would cost a timer
    // per call again); it is unref'd, and a sweep that finds nothing does not re-arm.
    return entry.opts;
  }

  /** Ends request `id` from this side (timeout, abort, cancel): tells the peer, rejects. */
  fail(id: number, code: BusErrorCode, message: string, cause?: unknown): boolean {
    const opts = this.take(id);
    if (opts === undefined) return false;
    this.onGiveUp?.(id);
    opts.reject(new BusError(code, message, cause === undefined ? {} : { cause }));
    return true;
  }

  /** Settles request `id` with its response. Returns false for an unknown (late) id. */
  resolve(id: number, frame: ResponseFrame): boolean {
    const opts = this.take(id);
    if (opts === undefined) return false;
    opts.resolve(frame);
    return true;
  }

  /** Settles request `id` with an error from the peer. Returns false for an unknown (late) id. */
  reject(id: number, error: BusError): boolean {
    const opts = this.take(id);
    if (opts === undefined) return false;
    opts.reject(error);
    return true;
  }

  /** Rejects every pending request with a fresh error of `code`, e.g. on peer exit or close. */
  rejectAll(code: BusErrorCode, describe: (request: string) => string): void {
    for (const id of [...this.entries.keys()]) {
      const opts = this.take(id);
      if (opts !== undefined) {
        opts.reject(new BusError(code, describe(describeRequest(opts))));
      }
    }
    this.timer.clear();
  }
}
