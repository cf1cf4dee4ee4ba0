/**
 * The producing side of a stream: checks a stream the other end opened (the method, its handler,
 * the input, the first credit), then runs the handler's async generator only while the consumer
 * has credit left, sending each item as it is yielded. It stops the generator (its `finally`
 * runs, `ctx.signal` aborts) when the consumer stops, times out, aborts or goes away.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import type { HandlerContext, Origin } from '../core/types.js';
import { BusError, summarizeIssues, toBusError, toIssues, toRemoteError } from '../errors.js';
import { decode, encodedSize, encodeInto } from '../protocol/codec.js';
import {
  Kind,
  type Outgoing,
  type StreamItemFrame,
  type StreamOpenFrame,
} from '../protocol/envelope.js';
import { describeOrigin, isSystemName } from './names.js';
import type { PayloadLimits } from './options.js';
import type { AnyHandler } from './serve.js';
import { addCredit, type ProducerSink, type StreamEndpoint } from './streams.js';

/** What serving a stream needs of its bus. */
export interface StreamServer {
  readonly contract: Contract;
  /** The user's handlers, by method. */
  readonly handlers: ReadonlyMap<string, AnyHandler>;
  /** Who this process is. */
  readonly self: Origin;
  readonly limits: PayloadLimits;
  report(error: BusError): void;
}

/**
 * Serves the stream `frame` opened on `endpoint` by `caller`: registers its producer and starts
 * the generator, or ends the stream at once with why it cannot run (`NO_HANDLER`, `BAD_INPUT`,
 * `PROTOCOL` for a first credit past the largest window, `REMOTE` if the handler throws).
 */
export function serveStream(
  server: StreamServer,
  endpoint: StreamEndpoint,
  frame: StreamOpenFrame,
  caller: Origin,
): void {
  const where = `stream handler '${frame.m}' on ${describeOrigin(server.self)}`;
  let input: unknown;
  let handler: AnyHandler;
  const credit = { items: 0, bytes: 0 };
  try {
    const def = isSystemName(frame.m) ? undefined : server.contract.methods.get(frame.m);
    const found = server.handlers.get(frame.m);
    if (def?.stream === undefined || found === undefined) {
      throw new BusError(
        'NO_HANDLER',
        def === undefined
          ? `${describeOrigin(server.self)} has no method '${frame.m}' in its contract`
          : def.stream === undefined
            ? `'${frame.m}' is not a stream method in the contract of ${describeOrigin(server.self)}`
            : `${describeOrigin(server.self)} has no handler for '${frame.m}'`,
      );
    }
    handler = found;
    const refused = addCredit(credit, frame.c, frame.b, endpoint.name);
    if (refused !== undefined) throw refused;
    input = decode(frame);
    if (def.input !== undefined) {
      const parsed = def.input.safeParse(input);
      if (!parsed.success) {
        throw new BusError(
          'BAD_INPUT',
          `${where}: the input fails the input schema: ${summarizeIssues(parsed.error.issues, 'input')}`,
          { issues: toIssues(parsed.error.issues) },
        );
      }
      input = parsed.data;
    } else input = undefined;
  } catch (error) {
    endpoint.send({ k: Kind.streamEnd, i: frame.i, e: toBusError(error, 'PROTOCOL').toJSON() });
    return;
  }
  const producer = new ProducerStream(server, endpoint, frame.i, where, credit);
  endpoint.producers.set(frame.i, producer);
  void producer.run(handler, input, { method: frame.m, caller, signal: producer.signal });
}

/** One stream being produced. */
class ProducerStream implements ProducerSink {
  private readonly controller = new AbortController();
  private stopped: BusError | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly server: StreamServer,
    private readonly endpoint: StreamEndpoint,
    private readonly id: number,
    private readonly where: string,
    private readonly outstanding: { items: number; bytes: number },
  ) {}

  /** Aborted when the consumer stops, times out, aborts, or goes away. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  credit(items: number, bytes: number): void {
    const refused = addCredit(this.outstanding, items, bytes, this.endpoint.name);
    if (refused !== undefined) {
      this.server.report(refused);
      this.endpoint.endProducer(this.id, refused);
      this.stop(refused);
      return;
    }
    this.wakeUp();
  }

  cancel(reason: BusError): void {
    this.endpoint.producers.delete(this.id);
    this.stop(reason);
  }

  private stop(reason: BusError): void {
    if (this.stopped !== undefined) return;
    this.stopped = reason;
    this.controller.abort(reason);
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Runs the generator while there is credit; ends the stream with its end or its error. */
  async run(handler: AnyHandler, input: unknown, ctx: HandlerContext): Promise<void> {
    let iterator: AsyncIterator<unknown>;
    try {
      const iterable = handler(input, ctx);
      const open = (iterable as Partial<AsyncIterable<unknown>> | null | undefined)?.[
        Symbol.asyncIterator
      ];
      if (typeof open !== 'function') {
        throw new BusError(
          'BAD_OUTPUT',
          `${this.where} did not return an async iterable (declare it \`async function*\`)`,
        );
      }
      iterator = open.call(iterable) as AsyncIterator<unknown>;
    } catch (error) {
      this.fail(error, error instanceof BusError && error.code === 'BAD_OUTPUT');
      return;
    }
    const { maxPayloadBytes: maxBytes, maxDepth } = this.server.limits;
    try {
      for (;;) {
        while (this.stopped === undefined && !this.hasCredit()) {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
          });
        }
        if (this.stopped !== undefined) break;
        const result = await iterator.next();
        if (this.stopped !== undefined) break;
        if (result.done === true) {
          this.endpoint.endProducer(this.id);
          return;
        }
        const frame: Outgoing<StreamItemFrame> = { k: Kind.streamItem, i: this.id };
        try {
          encodeInto(frame, result.value, maxBytes, maxDepth);
        } catch (error) {
          const e = toBusError(error, 'BAD_OUTPUT');
          const what = `${this.where} yielded an item it cannot send: ${e.message}`;
          this.fail(new BusError(e.code, what), true);
          break;
        }
        const bytes = encodedSize(frame);
        this.outstanding.items--;
        this.outstanding.bytes -= bytes;
        this.endpoint.send(frame, bytes);
      }
      // Stopped (or an item that cannot be sent): the generator's `finally` runs now.
      await iterator.return?.();
    } catch (error) {
      this.fail(error);
    }
  }

  private hasCredit(): boolean {
    return this.outstanding.items > 0 && this.outstanding.bytes > 0;
  }

  /**
   * Ends the stream, unless it was stopped: with the bus's own error (`own`), or with what the
   * handler threw, as `REMOTE`.
   */
  private fail(thrown: unknown, own = false): void {
    if (this.stopped !== undefined) return;
    const error = own && thrown instanceof BusError ? thrown : toRemoteError(thrown, this.where);
    this.endpoint.endProducer(this.id, error);
    this.stop(error);
  }
}
