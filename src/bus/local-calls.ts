/**
 * The primary's calls to itself: no link, the same validation, timeout and abort as a remote
 * call. The request is served on the local loop (in order with local publishes, yielding to the
 * event loop), and the answer comes back through it, as a link's would.
 *
 * @module
 */
import { BusError } from '../errors.js';
import type { Encoded, ResponseFrame } from '../protocol/envelope.js';
import { Kind } from '../protocol/envelope.js';
import { describeRequest, PendingCalls } from '../protocol/pending.js';
import type { LocalLoop } from './local-loop.js';
import type { ResolvedCallOptions } from './options.js';
import type { Responder } from './serve.js';

/** Serves one local request (the bus's `serve`, with `'primary'` as the caller). */
export type LocalServe = (
  responder: Responder,
  id: number,
  method: string,
  payload: Encoded,
  controller: AbortController,
) => void;

/** @internal The pending calls of the primary to itself, and the signals of their handlers. */
export class LocalCalls {
  private readonly pending = new PendingCalls((id) => {
    this.inbound.get(id)?.abort(new BusError('ABORTED', 'the caller gave up on the call'));
    this.inbound.delete(id);
  });
  private readonly inbound = new Map<number, AbortController>();
  private nextId = 1;
  /** Answers through the local loop: after what the handler sent itself, as a link would. */
  private readonly responder: Responder = {
    reply: (id, result) => {
      this.inbound.delete(id);
      const frame: ResponseFrame = { $cb: 1, k: Kind.response, i: id, ...result };
      this.loop.post(() => this.pending.resolve(id, frame));
    },
    fail: (id, error) => {
      this.inbound.delete(id);
      this.loop.post(() => this.pending.reject(id, error));
    },
  };

  constructor(
    private readonly loop: LocalLoop,
    private readonly serve: LocalServe,
  ) {}

  /** Calls and handlers in flight. */
  get size(): number {
    return this.pending.size + this.inbound.size;
  }

  /** A call from the primary to itself. */
  call(method: string, payload: Encoded, options: ResolvedCallOptions): Promise<Encoded> {
    return new Promise<ResponseFrame>((resolve, reject) => {
      const opts = { resolve, reject, method, to: 'the primary', ...options };
      if (options.signal?.aborted) {
        const request = describeRequest(opts);
        reject(new BusError('ABORTED', `${request} was aborted`, { cause: options.signal.reason }));
        return;
      }
      const id = this.nextId++;
      const controller = new AbortController();
      this.inbound.set(id, controller);
      this.pending.add(id, opts);
      // On the local loop, like a local publish's delivery, so the two keep their order; it
      // yields to the event loop, so a loop of local calls never starves routing and timers.
      this.loop.post(() => this.serve(this.responder, id, method, payload, controller));
    });
  }

  /** Rejects every call with `CLOSED` and aborts every handler's signal (the bus closes). */
  close(): void {
    this.pending.rejectAll('CLOSED', (label) => `${label} failed: the bus was closed`);
    for (const c of this.inbound.values()) c.abort(new BusError('CLOSED', 'the bus was closed'));
    this.inbound.clear();
  }
}
