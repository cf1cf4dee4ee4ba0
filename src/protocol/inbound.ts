/**
 * An inbound request being served, as its peer tracks it: the abort signal its handler sees.
 *
 * @module
 */
import type { BusError } from '../errors.js';

/**
 * An inbound request being served. Its `signal` is made only if somebody asks for it (most
 * handlers never do); `onAbort` is a cheaper hook for the primary's forwarding.
 */
export class InboundCall {
  private controller: AbortController | undefined;
  private reason: BusError | undefined;
  /** Called once if the call is cancelled by its caller or its caller goes away. */
  onAbort: ((reason: BusError) => void) | undefined;

  /** Aborted when the caller cancels or goes away; its `reason` is a {@link BusError}. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.reason !== undefined) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** Whether the call was aborted. */
  get aborted(): boolean {
    return this.reason !== undefined;
  }

  /** @internal */
  abort(reason: BusError): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.controller?.abort(reason);
    this.onAbort?.(reason);
  }
}
