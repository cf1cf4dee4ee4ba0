/**
 * The one object that owns every outbound request of a link until it settles: on its response,
 * its error, its timeout, its caller's abort, the peer's exit, or close.
 *
 * @module
 */
import { BusError, type BusErrorCode } from '../errors.js';
import type { ResponseFrame } from './envelope.js';

/** What {@link PendingCalls.add} needs to know of one request. */
export interface PendingOptions {
  /** Called once with the response frame. */
  readonly resolve: (frame: ResponseFrame) => void;
  /** Called once with the error. */
  readonly reject: (error: BusError) => void;
  /** For messages: e.g. `call 'add' to worker 2`. */
  readonly label: string;
  /** Reject with `TIMEOUT` after this many ms (absent: no timer). */
  readonly timeoutMs?: number | undefined;
  /** Reject with `ABORTED` when this fires. */
  readonly signal?: AbortSignal | undefined;
  /** Where the call was issued: its stack replaces the error's, so errors name the caller's line. */
  readonly site?: Error | undefined;
  /** Told when the request ends by timeout or abort, so the peer can be sent a cancel. */
  readonly onGiveUp?: (() => void) | undefined;
}

interface Entry {
  readonly opts: PendingOptions;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
}

/** Rewrites `error.stack` to the issuing site's frames. */
export function withSite(error: BusError, site: Error | undefined): BusError {
  if (site?.stack !== undefined) {
    const frames = site.stack.slice(site.stack.indexOf('\n') + 1);
    error.stack = `${error.name} [${error.code}]: ${error.message}\n${frames}`;
  }
  return error;
}

/** Outbound requests of one link, by id. */
export class PendingCalls {
  private readonly entries = new Map<number, Entry>();

  /** How many requests are pending. */
  get size(): number {
    return this.entries.size;
  }

  /** Registers request `id`. The caller must not have sent it if the signal is already aborted. */
  add(id: number, opts: PendingOptions): void {
    const entry: Entry = { opts, timer: undefined, onAbort: undefined };
    if (opts.timeoutMs !== undefined) {
      entry.timer = setTimeout(() => {
        this.fail(id, 'TIMEOUT', `${opts.label} timed out after ${opts.timeoutMs} ms`, true);
      }, opts.timeoutMs);
      entry.timer.unref();
    }
    if (opts.signal !== undefined) {
      const signal = opts.signal;
      entry.onAbort = () => {
        this.fail(id, 'ABORTED', `${opts.label} was aborted`, true, signal.reason);
      };
      signal.addEventListener('abort', entry.onAbort, { once: true });
    }
    this.entries.set(id, entry);
  }

  private take(id: number): PendingOptions | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    this.entries.delete(id);
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    if (entry.onAbort !== undefined) entry.opts.signal?.removeEventListener('abort', entry.onAbort);
    return entry.opts;
  }

  private fail(id: number, code: BusErrorCode, message: string, giveUp: boolean, cause?: unknown) {
    const opts = this.take(id);
    if (opts === undefined) return;
    if (giveUp) opts.onGiveUp?.();
    opts.reject(
      withSite(new BusError(code, message, cause === undefined ? {} : { cause }), opts.site),
    );
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
    opts.reject(withSite(error, opts.site));
    return true;
  }

  /** Rejects every pending request with a fresh error of `code`, e.g. on peer exit or close. */
  rejectAll(code: BusErrorCode, describe: (label: string) => string): void {
    for (const id of [...this.entries.keys()]) {
      const opts = this.take(id);
      if (opts !== undefined) {
        opts.reject(withSite(new BusError(code, describe(opts.label)), opts.site));
      }
    }
  }
}
