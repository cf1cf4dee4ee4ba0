/**
 * Serving requests: the handler table of a bus (the user's handlers, checked against the
 * contract, and the system handlers of its extensions), and running one of them on a request,
 * from its validated input to its encoded answer.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import type { HandlerContext, Origin, SystemHandler } from '../core/types.js';
import { BusError, summarizeIssues, toBusError, toIssues, toRemoteError } from '../errors.js';
import { decode, encode } from '../protocol/codec.js';
import type { Encoded } from '../protocol/envelope.js';
import { describeOrigin, isSystemName } from './names.js';
import { type BusObserver, OK_CODE } from './observe.js';
import type { PayloadLimits } from './options.js';

/** A user's handler, as the table keeps it. */
export type AnyHandler = (input: unknown, ctx: HandlerContext) => unknown;

/** Where a request's answer goes: a peer, or the primary's own pending calls. */
export interface Responder {
  reply(id: number, result: Encoded): void;
  fail(id: number, error: BusError): void;
}

/** Where a handler's abort signal comes from: made lazily, most handlers never ask. */
export interface SignalSource {
  readonly signal: AbortSignal;
}

/** What the table reads of its bus, when it needs it (a subclass sets `self` after the table). */
export interface ServingBus {
  /** Who this process is: `'primary'` or its worker id. */
  readonly self: Origin;
  /** Whether the bus is closed or closing. */
  readonly isClosed: boolean;
}

/** The handlers of one bus, user and system, and serving a request with them. */
export class HandlerTable {
  /** The user's handlers, by method. */
  readonly handlers = new Map<string, AnyHandler>();
  /** The system handlers, by name (`$…`). */
  readonly systemHandlers = new Map<string, SystemHandler>();
  /** Requests to the contract's methods served (answered or failed), system ones excluded. */
  served = 0;
  private readonly maxPayloadBytes: number;
  private readonly maxDepth: number;

  /** @param changed - called when the set of the user's handled methods changes. */
  constructor(
    private readonly bus: ServingBus,
    private readonly contract: Contract,
    limits: PayloadLimits,
    private readonly changed: () => void,
    private readonly observer: BusObserver,
  ) {
    this.maxPayloadBytes = limits.maxPayloadBytes;
    this.maxDepth = limits.maxDepth;
  }

  /**
   * Registers the user's handler of `method`; returns a function that unregisters it.
   * @throws a `BusError` `CLOSED` or `INVALID_ARGUMENT`, as `handle` documents.
   */
  add(method: string, handler: AnyHandler): () => void {
    if (this.bus.isClosed) throw new BusError('CLOSED', `handle '${method}': the bus is closed`);
    checkNewHandler(this.contract, this.handlers, method, handler, describeOrigin(this.bus.self));
    this.handlers.set(method, handler);
    this.changed();
    return () => {
      if (this.handlers.get(method) === handler) {
        this.handlers.delete(method);
        this.changed();
      }
    };
  }

  /** Registers the handler of system method `name` (`$…`); returns a function that unregisters it. */
  addSystem(name: string, handler: SystemHandler): () => void {
    if (!isSystemName(name))
      throw new BusError('INVALID_ARGUMENT', `system names start with '$': ${name}`);
    if (this.systemHandlers.has(name)) {
      throw new BusError('INVALID_ARGUMENT', `system method '${name}' already has a handler`);
    }
    this.systemHandlers.set(name, handler);
    return () => {
      if (this.systemHandlers.get(name) === handler) this.systemHandlers.delete(name);
    };
  }

  /** Unregisters every handler (on close). */
  clear(): void {
    this.handlers.clear();
    this.systemHandlers.clear();
  }

  /**
   * Serves one request with this process's handler of `method` and answers through `responder`:
   * validates the input (`BAD_INPUT`), turns a throw into `REMOTE` (a system handler's BusError
   * keeps its code), encodes the result. A sync handler is answered with no promise at all.
   */
  serve(
    responder: Responder,
    id: number,
    method: string,
    payload: Encoded,
    caller: Origin,
    call: SignalSource,
  ): void {
    const startMs = performance.now();
    const system = isSystemName(method);
    if (!system) this.served++;
    let output: unknown;
    try {
      output = this.run(system, method, payload, caller, call);
    } catch (error) {
      const failed =
        error instanceof HandlerThrew
          ? this.handlerError(system, method, error.thrown)
          : toBusError(error, 'PROTOCOL');
      this.observer.answered(method, failed.code, startMs);
      responder.fail(id, failed);
      return;
    }
    if (isThenable(output)) {
      output.then(
        (value) => this.answer(responder, id, method, value, startMs),
        (error: unknown) =>
          this.fail(responder, id, method, this.handlerError(system, method, error), startMs),
      );
    } else {
      this.answer(responder, id, method, output, startMs);
    }
  }

  /** Validates the input and calls the handler; returns its result (maybe a thenable). */
  private run(
    system: boolean,
    method: string,
    payload: Encoded,
    caller: Origin,
    call: SignalSource,
  ): unknown {
    if (system) {
      const handler = this.systemHandlers.get(method);
      if (handler === undefined) {
        throw new BusError(
          'NO_HANDLER',
          `${describeOrigin(this.bus.self)} has no system handler '${method}'`,
        );
      }
      const input = decode(payload);
      try {
        return handler(input, new Context(method, caller, call));
      } catch (error) {
        throw new HandlerThrew(error);
      }
    }
    const def = this.contract.methods.get(method);
    const handler = this.handlers.get(method);
    if (def === undefined || handler === undefined || def.stream !== undefined) {
      throw new BusError(
        'NO_HANDLER',
        def === undefined
          ? `${describeOrigin(this.bus.self)} has no method '${method}' in its contract`
          : def.stream !== undefined
            ? `'${method}' is a stream method on ${describeOrigin(this.bus.self)}: call it with bus.stream`
            : `${describeOrigin(this.bus.self)} has no handler for '${method}'`,
      );
    }
    let input: unknown;
    if (def.input !== undefined) {
      const parsed = def.input.safeParse(decode(payload));
      if (!parsed.success) {
        throw new BusError(
          'BAD_INPUT',
          `handler '${method}' on ${describeOrigin(this.bus.self)}: the input fails the input schema: ${summarizeIssues(parsed.error.issues, 'input')}`,
          { issues: toIssues(parsed.error.issues) },
        );
      }
      input = parsed.data;
    }
    try {
      return handler(input, new Context(method, caller, call));
    } catch (error) {
      throw new HandlerThrew(error);
    }
  }

  /** What a handler's throw or rejection answers: `REMOTE`, or a system handler's own BusError. */
  private handlerError(system: boolean, method: string, thrown: unknown): BusError {
    if (system && thrown instanceof BusError) return thrown;
    const kind = system ? 'system handler' : 'handler';
    return toRemoteError(thrown, `${kind} '${method}' on ${describeOrigin(this.bus.self)}`);
  }

  private fail(
    responder: Responder,
    id: number,
    method: string,
    error: BusError,
    startMs: number,
  ): void {
    this.observer.answered(method, error.code, startMs);
    responder.fail(id, error);
  }

  private answer(
    responder: Responder,
    id: number,
    method: string,
    value: unknown,
    startMs: number,
  ): void {
    let encoded: Encoded;
    try {
      encoded = encode(value, this.maxPayloadBytes, this.maxDepth);
    } catch (error) {
      const where = `handler '${method}' on ${describeOrigin(this.bus.self)}`;
      this.fail(
        responder,
        id,
        method,
        error instanceof BusError &&
          (error.code === 'PAYLOAD_TOO_LARGE' || error.code === 'PAYLOAD_TOO_DEEP')
          ? new BusError(
              error.code,
              `${where} returned a result it cannot send: ${error.message}`,
              {
                ...(error.data === undefined ? {} : { data: error.data }),
              },
            )
          : new BusError('BAD_OUTPUT', `${where} returned a value that cannot be encoded`, {
              cause: error,
            }),
        startMs,
      );
      return;
    }
    this.observer.answered(method, OK_CODE, startMs);
    responder.reply(id, encoded);
  }
}

/** Wraps what a handler threw synchronously, to tell it from the bus's own errors. */
class HandlerThrew {
  constructor(readonly thrown: unknown) {}
}

/** The handler context: `signal` is created only when a handler reads it. */
class Context implements HandlerContext {
  constructor(
    readonly method: string,
    readonly caller: Origin,
    private readonly source: SignalSource,
  ) {}

  get signal(): AbortSignal {
    return this.source.signal;
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * @internal The checks of a new handler of `method` (`where`: the process, for the message).
 * @throws a `BusError` `INVALID_ARGUMENT` for a method not in `contract`, a handler that is not a
 *   function, or a method that already has one.
 */
export function checkNewHandler(
  contract: Contract,
  handlers: ReadonlyMap<string, unknown>,
  method: string,
  handler: unknown,
  where: string,
): void {
  if (!contract.methods.has(method)) {
    throw new BusError('INVALID_ARGUMENT', `handle: '${method}' is not a method of the contract`);
  }
  if (typeof handler !== 'function') {
    throw new BusError('INVALID_ARGUMENT', `handle: the handler of '${method}' must be a function`);
  }
  if (handlers.has(method)) {
    throw new BusError('INVALID_ARGUMENT', `handle: '${method}' already has a handler in ${where}`);
  }
}
