/**
 * What the primary's bus and a worker's bus share: handler and subscriber registries, running a
 * handler on a request (validating its input), decoding and validating results and events.
 * Routing is left to the two subclasses.
 *
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import type {
  Contract,
  EventInput,
  EventPayload,
  MethodName,
  MethodOutput,
  StoreName,
  TopicName,
} from '../contract.js';
import type {
  Extension,
  ExtensionContext,
  HandleOptions,
  Installed,
  PeerId,
  Peers,
  Side,
} from '../core/extension.js';
import type {
  BusEvents,
  CallAllResult,
  CallArgs,
  CallOptions,
  EventContext,
  Handler,
  HandlerContext,
  Origin,
  SystemHandler,
  SystemSubscriber,
  Target,
} from '../core/types.js';
import { BusError, summarizeIssues, toBusError, toIssues, toRemoteError } from '../errors.js';
import {
  cloneEncoded,
  DEFAULT_MAX_DEPTH,
  decode,
  encode,
  MAX_MAX_DEPTH,
} from '../protocol/codec.js';
import type { Encoded, GatherItem } from '../protocol/envelope.js';
import { DEFAULT_FLOW_LIMITS, type FlowLimits } from '../protocol/peer.js';
import type { Lease, LockOptions, StateApi, StoreOf } from '../state/types.js';
import { checkCount } from '../util/count.js';
import { checkDurationMs } from '../util/duration.js';
import { LocalLoop } from './local-loop.js';
import { ReportSink } from './report.js';

/** Default of `callTimeoutMs`, in ms. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

type AnyHandler = (input: unknown, ctx: HandlerContext) => unknown;
type AnySubscriber = (payload: unknown, ctx: EventContext) => unknown;

/** @internal Whether a method or topic name is a system one (`$…`). */
export function isSystemName(name: string): boolean {
  return name.charCodeAt(0) === 36; // '$'
}

/** Options every bus takes. */
export interface BusOptions {
  /**
   * Default `timeoutMs` of every call from this process, in ms.
   * @default 30_000
   */
  readonly callTimeoutMs?: number;
  /**
   * The largest input, result or event payload this process sends or accepts, in bytes of JSON
   * text (approximately: string lengths as the channel writes them). Larger ones are refused by
   * the sender, before they reach the channel, with `PAYLOAD_TOO_LARGE`; one that reaches this
   * process anyway (a sender that did not check) is refused where it is received: a request is
   * answered with `PAYLOAD_TOO_LARGE`, an answer rejects its call with it, an event is dropped,
   * and each is reported on the `error` event.
   * @default 8_388_608 (8 MiB)
   */
  readonly maxPayloadBytes?: number;
  /**
   * The most bytes (approximately) that may wait to be sent to one peer while it does not keep
   * up (Node's IPC channel reports each message written; frames wait while too many are not).
   * Past it, new calls reject and publishes throw with `OVERLOADED`, instead of memory growing
   * without limit; answers to calls already in flight still queue.
   * @default 33_554_432 (32 MiB)
   */
  readonly maxQueueBytes?: number;
  /**
   * How many levels of arrays and objects a payload may nest (as its JSON has them). A deeper
   * input, result or event is refused by its sender with `PAYLOAD_TOO_DEEP`; one that reaches
   * this process anyway (a sender that did not check) is refused where it is received, like one
   * over `maxPayloadBytes`: a request is answered with the error, an answer rejects its call, an
   * event is dropped, and each is reported on the `error` event. At most 1_000.
   * @default 128
   */
  readonly maxDepth?: number;
  /**
   * Capture the stack when a call is issued, so that its rejection names the issuing line even
   * when the caller does not `await` it (`.then`/`.catch` chains). Off by default: it costs about
   * 2 µs per call (measured: about a fifth of the primary's CPU in the pipelined 64 B benchmark).
   * When off, a rejection's stack still names the caller's line through V8's async stack traces
   * whenever the caller awaits the call, at no cost.
   * @default false
   */
  readonly callSiteStacks?: boolean;
  /**
   * Primary only: let a worker whose contract differs from the primary's connect anyway (a
   * rolling deploy that changes the contract), reporting the difference as a `CONTRACT_MISMATCH`
   * `error` event instead of refusing the worker.
   * @default false
   */
  readonly allowContractMismatch?: boolean;
}

/** Default of `maxQueueBytes`: 32 MiB. */
export const DEFAULT_MAX_QUEUE_BYTES = 32 * 1024 * 1024;

/** Default of `maxPayloadBytes`: 8 MiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

/** Checked, defaulted call options. */
export interface ResolvedCallOptions {
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

/** Describes an origin for messages: `the primary` or `worker 3`. */
export function describeOrigin(origin: Origin): string {
  return origin === 'primary' ? 'the primary' : `worker ${origin}`;
}

function describeTarget(target: Target): string {
  if (typeof target === 'object') return `the worker in slot ${target.slot}`;
  return typeof target === 'number'
    ? `worker ${target}`
    : target === 'any'
      ? 'any worker'
      : 'the primary';
}

/**
 * The part of a bus that does not depend on where it runs. `C` is the contract.
 */
export abstract class BaseBus<C extends Contract> extends EventEmitter<BusEvents, unknown> {
  /** The contract this bus was made with. */
  readonly contract: C;
  /** Who this process is: `'primary'` or its worker id. */
  abstract readonly self: Origin;
  protected readonly handlers = new Map<string, AnyHandler>();
  protected readonly subscribers = new Map<string, Set<AnySubscriber>>();
  /** @internal */
  protected readonly systemHandlers = new Map<string, SystemHandler>();
  /** @internal */
  protected readonly systemSubscribers = new Map<string, Set<SystemSubscriber>>();
  /** Default `timeoutMs` of calls, in ms. */
  protected readonly callTimeoutMs: number;
  /** The largest payload this process sends or accepts, in bytes. */
  protected readonly maxPayloadBytes: number;
  /** The deepest nesting of a payload this process sends or accepts, in levels. */
  protected readonly maxDepth: number;
  /** Where reports go, aggregated. */
  private readonly sink = new ReportSink((error) => this.emitReport(error));
  /** This process's calls and publishes to itself, in order, yielding to the event loop. */
  protected readonly localLoop = new LocalLoop();
  /** Coalescing and queue bounds of every peer of this bus. */
  protected readonly flowLimits: FlowLimits;
  /** Capture stacks when calls are issued (see {@link BusOptions.callSiteStacks}). */
  protected readonly callSiteStacks: boolean;
  protected closing = false;
  private resolveClosed!: () => void;
  /** Resolves once the bus has closed. Never rejects. */
  readonly closed: Promise<void> = new Promise<void>((r) => {
    this.resolveClosed = r;
  });

  constructor(contract: C, options: BusOptions = {}) {
    super();
    this.contract = contract;
    const maxPayloadBytes = checkCount(
      options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
      'maxPayloadBytes',
    );
    this.maxPayloadBytes = maxPayloadBytes;
    const maxQueueBytes = checkCount(
      options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES,
      'maxQueueBytes',
    );
    const maxDepth = checkCount(
      options.maxDepth ?? DEFAULT_MAX_DEPTH,
      'maxDepth',
      1,
      MAX_MAX_DEPTH,
    );
    this.maxDepth = maxDepth;
    this.flowLimits = { ...DEFAULT_FLOW_LIMITS, maxQueueBytes, maxPayloadBytes, maxDepth };
    this.callSiteStacks = options.callSiteStacks === true;
    this.callTimeoutMs = checkDurationMs(
      options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      'callTimeoutMs',
    );
  }

  /** Whether the bus is closed or closing: calls and publishes reject with `CLOSED`. */
  get isClosed(): boolean {
    return this.closing;
  }

  // ------------------------------------------------------------------ routing, by subclasses

  /** Sends a request to `target` and settles with its encoded result. */
  protected abstract route(
    target: Target,
    method: string,
    payload: Encoded,
    options: ResolvedCallOptions,
  ): Promise<Encoded>;

  /** Sends a request to every connected worker and settles with one item per worker. */
  protected abstract gather(
    method: string,
    payload: Encoded,
    options: ResolvedCallOptions,
  ): Promise<GatherItem[]>;

  /** Sends an event frame on to the other processes. */
  protected abstract broadcast(topic: string, payload: Encoded): void;

  /** Tells the routing side that the set of handled methods changed. */
  protected handlersChanged(): void {}

  // ------------------------------------------------------------------ RPC

  /**
   * Registers the handler of `method` in this process. A handler may be sync or async; its
   * input has been validated against the method's input schema; what it throws reaches the
   * caller as a `REMOTE` BusError.
   *
   * @returns a function that unregisters it.
   * @throws {@link BusError} (synchronously) `CLOSED` once the bus is closed or closing;
   *   `INVALID_ARGUMENT` for a method not in the contract, a second handler for the same method,
   *   or a handler that is not a function.
   */
  handle<M extends MethodName<C>>(method: M, handler: Handler<C, M>): () => void {
    if (this.closing) throw new BusError('CLOSED', `handle '${method}': the bus is closed`);
    if (!this.contract.methods.has(method)) {
      throw new BusError('INVALID_ARGUMENT', `handle: '${method}' is not a method of the contract`);
    }
    if (typeof handler !== 'function') {
      throw new BusError(
        'INVALID_ARGUMENT',
        `handle: the handler of '${method}' must be a function`,
      );
    }
    if (this.handlers.has(method)) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `handle: '${method}' already has a handler in ${describeOrigin(this.self)}`,
      );
    }
    const h = handler as AnyHandler;
    this.handlers.set(method, h);
    this.handlersChanged();
    return () => {
      if (this.handlers.get(method) === h) {
        this.handlers.delete(method);
        this.handlersChanged();
      }
    };
  }

  /**
   * Calls `method` on `target` and resolves with its result, validated against the method's
   * output schema. The input is validated by the receiving process.
   *
   * @param target - `'primary'`, a worker id, or `'any'`.
   * @param method - a method of the contract.
   * @param args - the input (omit it for a method without an input schema), then
   *   `{ timeoutMs?, signal? }`.
   * @returns the handler's result, as the output schema parses it.
   * @throws never synchronously; rejects with a {@link BusError} whose code is `TIMEOUT`,
   *   `ABORTED`, `BAD_INPUT`, `BAD_OUTPUT`, `NO_HANDLER`, `NO_TARGET`, `TARGET_EXITED`, `REMOTE`,
   *   `CLOSED` or `INVALID_ARGUMENT`. Its stack names the line that issued the call.
   */
  async call<M extends MethodName<C>>(
    target: Target,
    method: M,
    ...args: CallArgs<C, M>
  ): Promise<MethodOutput<C, M>> {
    const site = this.callSiteStacks ? callSite(this.call) : undefined;
    try {
      const options = this.prepare('call', method, args[1]);
      checkTarget(target);
      const result = await this.route(
        target,
        method,
        encode(args[0], this.maxPayloadBytes, this.maxDepth),
        options,
      );
      return this.decodeResult(method, result, target) as MethodOutput<C, M>;
    } catch (error) {
      throw atCaller(toBusError(error, 'INVALID_ARGUMENT'), site);
    }
  }

  /**
   * Calls `method` on every connected worker (not the primary) and resolves with one settled
   * result per worker, in worker id order. Never rejects for a single worker's failure: that
   * worker's entry has `status: 'rejected'` and the error (`NO_HANDLER` for a worker without a
   * handler, `TIMEOUT` after `timeoutMs` for that worker).
   *
   * @throws never synchronously; rejects only with `CLOSED`, `ABORTED`, `INVALID_ARGUMENT`, or
   *   (from a worker) `TIMEOUT` if the primary does not answer at all.
   */
  async callAll<M extends MethodName<C>>(
    method: M,
    ...args: CallArgs<C, M>
  ): Promise<CallAllResult<MethodOutput<C, M>>[]> {
    const site = this.callSiteStacks ? callSite(this.callAll) : undefined;
    let items: GatherItem[];
    try {
      const options = this.prepare('callAll', method, args[1]);
      items = await this.gather(
        method,
        encode(args[0], this.maxPayloadBytes, this.maxDepth),
        options,
      );
    } catch (error) {
      throw atCaller(toBusError(error, 'INVALID_ARGUMENT'), site);
    }
    return items.map((item) => this.settleItem(method, item)) as CallAllResult<
      MethodOutput<C, M>
    >[];
  }

  private settleItem(method: string, item: GatherItem): CallAllResult<unknown> {
    if (item.e !== undefined) {
      return { workerId: item.w, status: 'rejected', error: BusError.fromJSON(item.e) };
    }
    try {
      const value = this.decodeResult(method, item, item.w);
      return { workerId: item.w, status: 'fulfilled', value };
    } catch (error) {
      return { workerId: item.w, status: 'rejected', error: toBusError(error, 'PROTOCOL') };
    }
  }

  private prepare(
    what: string,
    method: string,
    options: CallOptions | undefined,
  ): ResolvedCallOptions {
    if (this.closing) throw new BusError('CLOSED', `${what} '${method}': the bus is closed`);
    if (!this.contract.methods.has(method)) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `${what}: '${method}' is not a method of the contract`,
      );
    }
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new BusError('INVALID_ARGUMENT', `${what}: options must be an object`);
    }
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new BusError('INVALID_ARGUMENT', `${what}: options.signal must be an AbortSignal`);
    }
    const timeoutMs =
      options?.timeoutMs === undefined
        ? this.callTimeoutMs
        : checkDurationMs(options.timeoutMs, 'timeoutMs');
    return { timeoutMs, signal };
  }

  /** Decodes and validates a result against `method`'s output schema. Throws BAD_OUTPUT. */
  private decodeResult(method: string, result: Encoded, target: Target): unknown {
    const schema = this.contract.methods.get(method)?.output;
    const value = decode(result);
    if (schema === undefined) return undefined;
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
    throw new BusError(
      'BAD_OUTPUT',
      `call '${method}' to ${describeTarget(target)}: the handler's result fails the output schema: ${summarizeIssues(parsed.error.issues, 'output')}`,
      { issues: toIssues(parsed.error.issues) },
    );
  }

  /**
   * Serves one request with this process's handler of `method` and answers through `responder`:
   * validates the input (`BAD_INPUT`), turns a throw into `REMOTE` (a system handler's BusError
   * keeps its code), encodes the result. A sync handler is answered with no promise at all.
   */
  protected serve(
    responder: Responder,
    id: number,
    method: string,
    payload: Encoded,
    caller: Origin,
    call: SignalSource,
  ): void {
    const system = isSystemName(method);
    let output: unknown;
    try {
      output = this.run(system, method, payload, caller, call);
    } catch (error) {
      responder.fail(
        id,
        error instanceof HandlerThrew
          ? this.handlerError(system, method, error.thrown)
          : toBusError(error, 'PROTOCOL'),
      );
      return;
    }
    if (isThenable(output)) {
      output.then(
        (value) => this.answer(responder, id, method, value),
        (error: unknown) => responder.fail(id, this.handlerError(system, method, error)),
      );
    } else {
      this.answer(responder, id, method, output);
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
          `${describeOrigin(this.self)} has no system handler '${method}'`,
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
    if (def === undefined || handler === undefined) {
      throw new BusError(
        'NO_HANDLER',
        def === undefined
          ? `${describeOrigin(this.self)} has no method '${method}' in its contract`
          : `${describeOrigin(this.self)} has no handler for '${method}'`,
      );
    }
    let input: unknown;
    if (def.input !== undefined) {
      const parsed = def.input.safeParse(decode(payload));
      if (!parsed.success) {
        throw new BusError(
          'BAD_INPUT',
          `handler '${method}' on ${describeOrigin(this.self)}: the input fails the input schema: ${summarizeIssues(parsed.error.issues, 'input')}`,
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
    return toRemoteError(thrown, `${kind} '${method}' on ${describeOrigin(this.self)}`);
  }

  private answer(responder: Responder, id: number, method: string, value: unknown): void {
    let encoded: Encoded;
    try {
      encoded = encode(value, this.maxPayloadBytes, this.maxDepth);
    } catch (error) {
      const where = `handler '${method}' on ${describeOrigin(this.self)}`;
      responder.fail(
        id,
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
      );
      return;
    }
    responder.reply(id, encoded);
  }

  // ------------------------------------------------------------------ shared state

  /**
   * The shared store `name` of the contract: a typed key-value store held by the primary, the
   * same API in every process (`get`, `entry`, `set`, `update`, `delete`, `keys`, `watch`, and
   * `increment` for a store of numbers): see `Store`.
   *
   * @throws {@link BusError} `INVALID_ARGUMENT` (synchronously) for a name not in the contract.
   */
  store<S extends StoreName<C>>(name: S): StoreOf<C, S> {
    return this.state().store(name);
  }

  /**
   * Acquires the cluster-wide lock `name` and resolves with its {@link Lease} (`token`, a fencing
   * token; `release()`). Waiters are served first come, first served; a lease ends on
   * `release()`, after `ttlMs` (default 30_000 ms), or at once when its process exits.
   *
   * @param options - `ttlMs` (default 30_000), `waitMs` (default 30_000; 0: try once), `signal`.
   * @throws never synchronously; rejects with {@link BusError} `LOCK_TIMEOUT` (not granted
   *   within `waitMs`), `ABORTED`, `CLOSED`, `INVALID_ARGUMENT`, or `TIMEOUT` when the primary
   *   does not answer at all.
   */
  async lock(name: string, options?: LockOptions): Promise<Lease> {
    return this.state().lock(name, options);
  }

  /** The installed state extension's API (`$state`); `NO_HANDLER` without one. */
  private state(): StateApi<C> {
    const api = this.apis.get('state') as StateApi<C> | undefined;
    if (api !== undefined) return api;
    throw new BusError('NO_HANDLER', `${describeOrigin(this.self)} has no state extension`);
  }

  // ------------------------------------------------------------------ system protocols

  /**
   * @internal Registers the handler of system method `name` (`$…`) in this process.
   * @returns a function that unregisters it.
   */
  systemHandle(name: string, handler: SystemHandler): () => void {
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

  /**
   * @internal Calls system method `name` (`$…`) on `target`, with superjson encoding and the
   * usual timeout, abort and exit handling, but no contract validation: the system protocol
   * validates what it receives. A BusError thrown by the handler arrives with its own code.
   */
  async systemCall(
    name: string,
    target: Target,
    input: unknown,
    options?: CallOptions,
  ): Promise<unknown> {
    const site = this.callSiteStacks ? callSite(this.systemCall) : undefined;
    let result: Encoded;
    try {
      if (this.closing) throw new BusError('CLOSED', `'${name}': the bus is closed`);
      if (!isSystemName(name)) {
        throw new BusError('INVALID_ARGUMENT', `system names start with '$': ${name}`);
      }
      const signal = options?.signal;
      const timeoutMs =
        options?.timeoutMs === undefined
          ? this.callTimeoutMs
          : checkDurationMs(options.timeoutMs, 'timeoutMs');
      result = await this.route(target, name, encode(input, this.maxPayloadBytes, this.maxDepth), {
        timeoutMs,
        signal,
      });
    } catch (error) {
      throw atCaller(toBusError(error, 'INVALID_ARGUMENT'), site);
    }
    return decode(result);
  }

  // ------------------------------------------------------------------ extensions

  /** Which side of the cluster this bus is. */
  abstract readonly side: Side;

  /** The other processes, as this bus sees them (for extensions). */
  protected abstract readonly peers: Peers;

  /**
   * Sends system event `topic` (`$…`) to peer `to`; to itself (the hub to `HUB_ID`), through
   * the local loop. Returns false when `to` is not connected.
   */
  protected abstract sendSystem(to: PeerId, topic: string, payload: unknown): boolean;

  /** Installed extensions, by name, in install order. */
  protected readonly extensions = new Map<string, Installed<unknown>>();
  /** Their APIs, by name, kept after close: a closed bus's API rejects with `CLOSED` itself. */
  private readonly apis = new Map<string, unknown>();

  /**
   * @internal Installs `extension` on this bus: gives it its {@link ExtensionContext} (system
   * names `$<name>.<verb>`) and keeps what it returns, for the handshake and for close.
   * @throws {@link BusError} `INVALID_ARGUMENT` for a second extension of the same name.
   */
  install<Api>(extension: Extension<Api>): Api {
    const name = extension.name;
    if (this.extensions.has(name)) {
      throw new BusError('INVALID_ARGUMENT', `extension '${name}' is already installed`);
    }
    const installed = extension.install(this.contextFor(name));
    this.extensions.set(name, installed);
    this.apis.set(name, installed.api);
    return installed.api;
  }

  private contextFor(name: string): ExtensionContext {
    const prefix = `$${name}.`;
    return {
      name,
      side: this.side,
      self: this.self,
      handle: (verb: string, handler: SystemHandler, options?: HandleOptions) => {
        const full = prefix + verb;
        if (options?.callers === 'any') return this.systemHandle(full, handler);
        return this.systemHandle(full, (input, context) => {
          if (context.caller !== 'primary') {
            throw new BusError(
              'FORBIDDEN',
              `'${full}' is the primary's own: ${describeOrigin(context.caller)} may not call it`,
            );
          }
          return handler(input, context);
        });
      },
      call: (target: Target, verb: string, input?: unknown, options?: CallOptions) =>
        this.systemCall(prefix + verb, target, input, options),
      send: (to: PeerId, verb: string, payload?: unknown) =>
        this.sendSystem(to, prefix + verb, payload),
      on: (verb: string, listener: SystemSubscriber) =>
        this.systemSubscribe(prefix + verb, listener),
      peers: this.peers,
      report: (error: BusError) => this.report(error),
      closed: this.closed,
    };
  }

  /** Closes every installed extension, last installed first; reports what throws. */
  protected closeExtensions(): void {
    for (const [name, installed] of [...this.extensions].reverse()) {
      try {
        installed.close?.();
      } catch (error) {
        this.report(toBusError(error, 'PROTOCOL', `extension '${name}' failed to close`));
      }
    }
    this.extensions.clear();
  }

  /**
   * @internal Subscribes to system topic `name` (`$…`). System events are point to point (a
   * worker's go to the primary only; the primary's to the workers it names), are not validated
   * against the contract, and are delivered synchronously in arrival order.
   */
  systemSubscribe(name: string, subscriber: SystemSubscriber): () => void {
    let set = this.systemSubscribers.get(name);
    if (set === undefined) {
      set = new Set();
      this.systemSubscribers.set(name, set);
    }
    set.add(subscriber);
    return () => {
      const current = this.systemSubscribers.get(name);
      if (current?.delete(subscriber) && current.size === 0) this.systemSubscribers.delete(name);
    };
  }

  /** Delivers a system event to this process's system subscribers. */
  private deliverSystem(topic: string, payload: Encoded, source: Origin): void {
    const set = this.systemSubscribers.get(topic);
    if (set === undefined) return;
    let value: unknown;
    try {
      value = decode(payload);
    } catch (error) {
      this.report(toBusError(error, 'PROTOCOL'));
      return;
    }
    for (const subscriber of [...set]) {
      try {
        subscriber(value, source);
      } catch (error) {
        this.report(toBusError(error, 'PROTOCOL', `system subscriber of '${topic}' threw`));
      }
    }
  }

  // ------------------------------------------------------------------ pub/sub

  /**
   * Publishes `payload` on `topic` to every subscriber in every process of the cluster, this one
   * included. The payload is validated here first, and again by every receiver. Delivery is
   * asynchronous; between one publisher and one receiver, events keep their order (as Node's IPC
   * channel guarantees).
   *
   * @throws {@link BusError} (synchronously) `INVALID_ARGUMENT` for a topic not in the contract,
   *   `BAD_PAYLOAD` (with `issues`) for a payload that fails the topic's schema, `CLOSED`.
   */
  publish<T extends TopicName<C>>(topic: T, payload: EventInput<C, T>): void {
    if (this.closing) throw new BusError('CLOSED', `publish '${topic}': the bus is closed`);
    const schema = this.contract.events.get(topic);
    if (schema === undefined) {
      throw new BusError('INVALID_ARGUMENT', `publish: '${topic}' is not a topic of the contract`);
    }
    const parsed = schema.safeParse(payload);
    if (!parsed.success) {
      throw new BusError(
        'BAD_PAYLOAD',
        `publish '${topic}': the payload fails the topic's schema: ${summarizeIssues(parsed.error.issues, 'payload')}`,
        {
          issues: toIssues(parsed.error.issues),
        },
      );
    }
    const encoded = encode(payload, this.maxPayloadBytes, this.maxDepth);
    this.broadcast(topic, encoded);
    this.deliver(
      topic,
      this.subscribers.has(topic) ? cloneEncoded(encoded) : encoded,
      this.self,
      true,
    );
  }

  /**
   * Subscribes `handler` to `topic` in this process. It receives every event published on the
   * topic by any process, validated against the topic's schema; an invalid one never reaches it
   * and is reported as a `BAD_PAYLOAD` `error` event. A subscriber that throws or rejects is
   * reported as `SUBSCRIBER_FAILED`; the others still run.
   *
   * @returns a function that unsubscribes.
   * @throws {@link BusError} (synchronously) `CLOSED` once the bus is closed or closing;
   *   `INVALID_ARGUMENT` for a topic not in the contract or a handler that is not a function.
   */
  subscribe<T extends TopicName<C>>(
    topic: T,
    handler: (payload: EventPayload<C, T>, context: EventContext) => void | Promise<void>,
  ): () => void {
    if (this.closing) throw new BusError('CLOSED', `subscribe '${topic}': the bus is closed`);
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
    let set = this.subscribers.get(topic);
    if (set === undefined) {
      set = new Set();
      this.subscribers.set(topic, set);
    }
    const h = handler as AnySubscriber;
    set.add(h);
    return () => {
      const current = this.subscribers.get(topic);
      if (current?.delete(h) && current.size === 0) this.subscribers.delete(topic);
    };
  }

  /**
   * Delivers an encoded event to this process's subscribers, after validating it. Events from
   * other processes are delivered as they arrive, in order with the requests from the same
   * sender; this process's own publishes are `deferred` by a microtask, so `publish` never calls
   * a subscriber from inside itself.
   */
  protected deliver(topic: string, payload: Encoded, source: Origin, deferred = false): void {
    if (isSystemName(topic)) {
      this.deliverSystem(topic, payload, source);
      return;
    }
    if (!this.subscribers.has(topic)) return;
    if (deferred) this.localLoop.post(() => this.dispatchEvent(topic, payload, source));
    else this.dispatchEvent(topic, payload, source);
  }

  private dispatchEvent(topic: string, payload: Encoded, source: Origin): void {
    {
      const set = this.subscribers.get(topic);
      if (set === undefined || this.closing) return;
      const schema = this.contract.events.get(topic);
      if (schema === undefined) {
        this.report(
          new BusError(
            'BAD_PAYLOAD',
            `event '${topic}' from ${describeOrigin(source)} is not a topic of this contract`,
          ),
        );
        return;
      }
      let value: unknown;
      try {
        const parsed = schema.safeParse(decode(payload));
        if (!parsed.success) {
          this.report(
            new BusError(
              'BAD_PAYLOAD',
              `event '${topic}' from ${describeOrigin(source)} fails the topic's schema: ${summarizeIssues(parsed.error.issues, 'payload')}`,
              {
                issues: toIssues(parsed.error.issues),
              },
            ),
          );
          return;
        }
        value = parsed.data;
      } catch (error) {
        this.report(toBusError(error, 'PROTOCOL'));
        return;
      }
      const ctx: EventContext = { topic, source };
      for (const subscriber of [...set]) {
        try {
          const r = subscriber(value, ctx);
          if (r instanceof Promise)
            r.catch((error: unknown) => this.subscriberFailed(topic, error));
        } catch (error) {
          this.subscriberFailed(topic, error);
        }
      }
    }
  }

  private subscriberFailed(topic: string, error: unknown): void {
    const remote = toRemoteError(error, `a subscriber of '${topic}'`);
    this.report(new BusError('SUBSCRIBER_FAILED', remote.message, { cause: remote.cause }));
  }

  /**
   * Reports what has nobody to reject: on the `error` event, or as a process warning when nobody
   * listens, so nothing is dropped silently. Repeats are aggregated per code (the first 10 of
   * each second as they come, then one summary with `data.suppressed`): see `ReportSink`.
   */
  protected report(error: BusError): void {
    this.sink.report(error);
  }

  private emitReport(error: BusError): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else process.emitWarning(error.message, { type: 'BusWarning', code: error.code });
  }

  /** Marks the bus closed and resolves `closed`; subclasses close their links first. */
  protected finishClose(): void {
    this.closeExtensions();
    this.sink.flush();
    this.localLoop.clear();
    this.handlers.clear();
    this.systemHandlers.clear();
    this.systemSubscribers.clear();
    this.subscribers.clear();
    this.resolveClosed();
    this.emit('close');
    this.removeAllListeners();
  }

  /** Closes the bus. See the subclasses. */
  abstract close(): Promise<void>;

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Gives a rejection the stack of the line that issued the call. Without `site`, at no cost on
 * the happy path: called in the `catch` of an async method after its `await`, the captured stack
 * ends with V8's `at async <caller>` frames (zero-cost async stack traces), which name the
 * caller's line when it awaits the call. With `site` (`callSiteStacks: true`), the frames
 * captured when the call was issued, whether or not the caller awaits.
 */
function atCaller(error: BusError, site: Error | undefined): BusError {
  let frames: string;
  if (site?.stack !== undefined) {
    frames = site.stack.slice(site.stack.indexOf('\n'));
  } else {
    Error.captureStackTrace(error, atCaller);
    const stack = error.stack ?? '';
    frames = stack.slice(stack.indexOf('\n'));
  }
  error.stack = `${error.name} [${error.code}]: ${error.message}${frames}`;
  return error;
}

/** Captures the stack at the call (frames above `fn` left out); formatted only if read. */
// biome-ignore lint/complexity/noBannedTypes: captureStackTrace takes any function
function callSite(fn: Function): Error {
  const site = { name: 'BusError', message: '' } as Error;
  Error.captureStackTrace(site, fn);
  return site;
}

/** Where a request's answer goes: a peer, or the primary's own pending calls. */
export interface Responder {
  reply(id: number, result: Encoded): void;
  fail(id: number, error: BusError): void;
}

/** Wraps what a handler threw synchronously, to tell it from the bus's own errors. */
class HandlerThrew {
  constructor(readonly thrown: unknown) {}
}

/** Where a handler's abort signal comes from: made lazily, most handlers never ask. */
export interface SignalSource {
  readonly signal: AbortSignal;
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

function checkTarget(target: unknown): void {
  if (target === 'primary' || target === 'any') return;
  if (typeof target === 'number' && Number.isSafeInteger(target) && target > 0) return;
  if (typeof target === 'object' && target !== null) {
    const slot = (target as { slot?: unknown }).slot;
    if (Number.isSafeInteger(slot) && (slot as number) >= 0) return;
  }
  throw new BusError(
    'INVALID_ARGUMENT',
    `call: target must be 'primary', 'any', a worker id (a positive integer) or { slot } (an integer >= 0), got ${JSON.stringify(target) ?? String(target)}`,
  );
}
