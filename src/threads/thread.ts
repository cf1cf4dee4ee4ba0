/**
 * The thread's side: the bus `connectThread(contract)` resolves with in a thread the pool
 * started: `handle` and `subscribe`. Requests and events arrive through a {@link Peer} over
 * `parentPort`; inputs and event payloads are validated here against the contract; what a
 * handler throws goes back as `REMOTE` in the error wire form.
 *
 * @module
 */
import type { parentPort } from 'node:worker_threads';
import { EventEmitter } from 'eventemitter3';
import { checkNewHandler } from '../bus/serve.js';
import type {
  Contract,
  EventPayload,
  HandlerInput,
  HandlerOutput,
  MethodName,
  TopicName,
} from '../contract.js';
import { BusError, summarizeIssues, toIssues, toRemoteError } from '../errors.js';
import { Kind } from '../protocol/envelope.js';
import { fingerprint } from '../protocol/fingerprint.js';
import { type InboundCall, Peer } from '../protocol/peer.js';
import { emitOrWarn } from '../util/warn.js';
import { CLONE_PAYLOADS, type Framed, PortLink } from './port-link.js';
import { THREAD_FLOW_LIMITS, ThreadVerb } from './wire.js';

/** What a thread's handler gets besides its input. */
export interface ThreadHandlerContext {
  /** The method being handled. */
  readonly method: string;
  /**
   * Aborted when the caller aborts or times out, or the pool closes. Its `reason` is a
   * `BusError` (`ABORTED`). The handler has the pool's `abortGraceMs` to return after it.
   */
  readonly signal: AbortSignal;
}

/** A thread's handler of method `M`: sync or async; what it throws reaches the caller as `REMOTE`. */
export type ThreadHandler<C extends Contract, M extends MethodName<C>> = (
  input: HandlerInput<C, M>,
  context: ThreadHandlerContext,
) => HandlerOutput<C, M> | Promise<HandlerOutput<C, M>>;

/** What a thread's subscriber gets besides the payload. */
export interface ThreadEventContext {
  /** The topic. */
  readonly topic: string;
}

/** The events of a {@link ThreadBus}. */
export interface ThreadBusEvents {
  /**
   * Something received that has nobody to reject: an event payload that failed its schema
   * (`BAD_PAYLOAD`), a subscriber that threw (`SUBSCRIBER_FAILED`), a malformed frame
   * (`PROTOCOL`). Without a listener, it is printed with `process.emitWarning`.
   */
  error: (error: BusError) => void;
}

type AnyHandler = (input: unknown, context: ThreadHandlerContext) => unknown;
type AnySubscriber = (payload: unknown, context: ThreadEventContext) => unknown;

class Context implements ThreadHandlerContext {
  constructor(
    readonly method: string,
    private readonly call: InboundCall,
  ) {}
  get signal(): AbortSignal {
    return this.call.signal;
  }
}

/** The bus of one pool thread, made by `connectThread`. `C` is the contract. */
export class ThreadBus<C extends Contract> extends EventEmitter<ThreadBusEvents> {
  private readonly handlers = new Map<string, AnyHandler>();
  private readonly subscribers = new Map<string, Set<AnySubscriber>>();
  /** @internal */
  readonly peer: Peer;
  private readonly link: PortLink;
  private readySent = false;
  private welcomed: ((index: number) => void) | undefined;
  private refusedWith: ((error: BusError) => void) | undefined;
  /** This thread's index in its pool, 0-based (a replacement keeps its predecessor's). */
  index = -1;

  /** @internal Made by `connectThread`. */
  constructor(
    readonly contract: C,
    port: NonNullable<typeof parentPort>,
  ) {
    super();
    const link = new PortLink(
      port,
      port,
      'close',
      (message, error) => this.refused(message, error),
      true, // answers posted in one event-loop turn travel together (measured: 1.4-1.6x calls/s)
    );
    this.link = link;
    this.peer = new Peer(
      link,
      'the pool',
      {
        request: (_peer, frame, call) => this.serve(frame.i, frame.m, frame.p, call),
        event: (_peer, frame) => this.deliver(frame.m, frame.p),
        control: (_peer, frame) => {
          if (frame.k !== Kind.welcome) return;
          if (frame.e !== undefined) this.refusedWith?.(BusError.fromJSON(frame.e));
          else this.welcomed?.(frame.w);
        },
        invalid: (_peer, reason, code) => this.report(new BusError(code ?? 'PROTOCOL', reason)),
        closed: () => {},
      },
      'CLOSED',
      THREAD_FLOW_LIMITS,
      CLONE_PAYLOADS,
    );
  }

  /** @internal Lets go of `parentPort` (a failed connect), so the thread can end. */
  detach(error: BusError): void {
    this.peer.close('CLOSED', error.message);
    this.link.shut();
  }

  /** @internal Says hello and waits for the pool's welcome, for at most `timeoutMs`. */
  handshake(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.refusedWith = undefined;
        this.welcomed = undefined;
        reject(
          new BusError(
            'TIMEOUT',
            `connectThread: no welcome from the pool within ${timeoutMs} ms (was this thread started by createPool?)`,
          ),
        );
      }, timeoutMs);
      this.welcomed = (index) => {
        clearTimeout(timer);
        this.welcomed = undefined;
        this.index = index;
        resolve();
        // One macrotask later, so handlers registered right after connectThread are in place.
        setImmediate(() => {
          this.readySent = true;
          this.peer.send({ k: Kind.ready, m: [...this.handlers.keys()] });
        });
      };
      this.refusedWith = (error) => {
        clearTimeout(timer);
        reject(error);
      };
      this.peer.send({ k: Kind.hello, pid: process.pid, h: fingerprint(this.contract).hash });
    });
  }

  /**
   * Registers the handler of `method` in this thread. Its input has been validated against the
   * method's input schema here; its result is validated by the caller against the output schema.
   *
   * @returns a function that unregisters it.
   * @throws `BusError` (synchronously) `INVALID_ARGUMENT` for a method not in the contract,
   *   a second handler for the same method, or a handler that is not a function.
   */
  handle<M extends MethodName<C>>(method: M, handler: ThreadHandler<C, M>): () => void {
    checkNewHandler(this.contract, this.handlers, method, handler, 'this thread');
    const h = handler as AnyHandler;
    this.handlers.set(method, h);
    this.handlersChanged();
    return () => {
      if (this.handlers.get(method) !== h) return;
      this.handlers.delete(method);
      this.handlersChanged();
    };
  }

  /**
   * Subscribes `handler` to `topic` in this thread: it receives every event the pool publishes,
   * validated against the topic's schema here (an invalid one is reported as `BAD_PAYLOAD` and
   * never reaches it). A subscriber that throws or rejects is reported as `SUBSCRIBER_FAILED`.
   *
   * @returns a function that unsubscribes.
   * @throws `BusError` (synchronously) `INVALID_ARGUMENT` for a topic not in the contract
   *   or a handler that is not a function.
   */
  subscribe<T extends TopicName<C>>(
    topic: T,
    handler: (payload: EventPayload<C, T>, context: ThreadEventContext) => void | Promise<void>,
  ): () => void {
    if (!this.contract.events.has(topic)) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `subscribe: '${topic}' is not a topic of the contract`,
      );
    }
    if (typeof handler !== 'function') {
      throw new BusError(
        'INVALID_ARGUMENT',
        `subscribe: the handler of '${topic}' must be a function`,
      );
    }
    const h = handler as AnySubscriber;
    let set = this.subscribers.get(topic);
    if (set === undefined) {
      set = new Set();
      this.subscribers.set(topic, set);
    }
    set.add(h);
    return () => {
      set.delete(h);
    };
  }

  private handlersChanged(): void {
    if (this.readySent) this.peer.send({ k: Kind.handlers, m: [...this.handlers.keys()] });
  }

  private where(method: string): string {
    return `handler '${method}' on thread ${this.index}`;
  }

  private serve(id: number, method: string, payload: unknown, call: InboundCall): void {
    const def = this.contract.methods.get(method);
    const handler = this.handlers.get(method);
    if (def === undefined || handler === undefined) {
      this.peer.fail(
        id,
        new BusError(
          'NO_HANDLER',
          def === undefined
            ? `thread ${this.index} has no method '${method}' in its contract`
            : `thread ${this.index} has no handler for '${method}'`,
        ),
      );
      return;
    }
    let input: unknown;
    if (def.input !== undefined) {
      const parsed = def.input.safeParse(payload);
      if (!parsed.success) {
        this.peer.fail(
          id,
          new BusError(
            'BAD_INPUT',
            `${this.where(method)}: the input fails the input schema: ${summarizeIssues(parsed.error.issues, 'input')}`,
            { issues: toIssues(parsed.error.issues) },
          ),
        );
        return;
      }
      input = parsed.data;
    }
    let output: unknown;
    try {
      output = handler(input, new Context(method, call));
    } catch (error) {
      this.finish(id, call, undefined, toRemoteError(error, this.where(method)));
      return;
    }
    if (isThenable(output)) {
      output.then(
        (value) => this.finish(id, call, value, undefined),
        (error: unknown) =>
          this.finish(id, call, undefined, toRemoteError(error, this.where(method))),
      );
    } else {
      this.finish(id, call, output, undefined);
    }
  }

  /** Answers (dropped by the peer if the call was cancelled; the pool is then told it returned). */
  private finish(id: number, call: InboundCall, value: unknown, error: BusError | undefined): void {
    if (call.aborted) {
      this.peer.send({ k: Kind.event, m: ThreadVerb.settled, s: 0, p: id });
      return;
    }
    if (error !== undefined) this.peer.fail(id, error);
    else this.peer.reply(id, { p: value }, undefined, 64);
  }

  /** A frame `postMessage` refused: a result structured clone cannot copy fails its call. */
  private refused(message: Framed, error: unknown): void {
    const why = error instanceof Error ? error.message : String(error);
    if (message.k === Kind.response && typeof message.i === 'number') {
      this.peer.send({
        k: Kind.error,
        i: message.i,
        e: new BusError(
          'BAD_OUTPUT',
          `a handler on thread ${this.index} returned a value that cannot be copied to the caller (${why})`,
        ).toJSON(),
      });
      return;
    }
    this.report(
      new BusError('INVALID_ARGUMENT', `thread ${this.index} could not send a message: ${why}`),
    );
  }

  private deliver(topic: string, payload: unknown): void {
    const schema = this.contract.events.get(topic);
    if (schema === undefined) {
      this.report(
        new BusError(
          'BAD_PAYLOAD',
          `thread ${this.index} got an event on '${topic}', which is not a topic of its contract`,
        ),
      );
      return;
    }
    const parsed = schema.safeParse(payload);
    if (!parsed.success) {
      this.report(
        new BusError(
          'BAD_PAYLOAD',
          `event '${topic}' on thread ${this.index}: the payload fails the topic's schema: ${summarizeIssues(parsed.error.issues, 'payload')}`,
          { issues: toIssues(parsed.error.issues) },
        ),
      );
      return;
    }
    const set = this.subscribers.get(topic);
    if (set === undefined) return;
    const context: ThreadEventContext = { topic };
    for (const subscriber of [...set]) {
      try {
        const out = subscriber(parsed.data, context);
        if (isThenable(out)) out.then(undefined, (e: unknown) => this.subscriberFailed(topic, e));
      } catch (e) {
        this.subscriberFailed(topic, e);
      }
    }
  }

  private subscriberFailed(topic: string, thrown: unknown): void {
    const remote = toRemoteError(thrown, `a subscriber of '${topic}' on thread ${this.index}`);
    this.report(new BusError('SUBSCRIBER_FAILED', remote.message, { cause: remote.cause }));
  }

  private report(error: BusError): void {
    emitOrWarn(this, error);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
