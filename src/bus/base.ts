/**
 * What the primary's bus and a worker's bus share: the public API (`handle`, `call`, `callAll`,
 * `publish`, `subscribe`, `store`, `lock`), the system protocol extensions are built on, and the
 * lifecycle. Its parts are files of their own: the options (`options.ts`), the calling side
 * (`call.ts`, `stacks.ts`), serving requests (`serve.ts`), publish/subscribe (`pubsub.ts`) and
 * the extensions (`extensions.ts`). Routing is left to the two subclasses.
 *
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import type {
  Contract,
  EventInput,
  EventPayload,
  MatchingTopics,
  MethodName,
  MethodOutput,
  PatternPayload,
  TopicName,
  TopicPattern,
  UnaryMethodName,
} from '../contract.js';
import type { Extension, Installed, PeerId, Peers, Side } from '../core/extension.js';
import { NODE_ENV } from '../core/mesh.js';
import type {
  BusEvents,
  CallAllResult,
  CallArgs,
  CallOptions,
  EventContext,
  Handler,
  Origin,
  SystemHandler,
  SystemSubscriber,
  Target,
} from '../core/types.js';
import type { BusError } from '../errors.js';
import type { Encoded, GatherItem } from '../protocol/envelope.js';
import type { FlowLimits } from '../protocol/peer.js';
import { emitOrWarn } from '../util/warn.js';
import { Caller } from './call.js';
import { Extensions } from './extensions.js';
import { LocalLoop } from './local-loop.js';
import { BusObserver } from './observe.js';
import { type BusOptions, type ResolvedCallOptions, resolveBusOptions } from './options.js';
import { type AnySubscriber, PubSub, type Subscription } from './pubsub.js';
import { ReportSink } from './report.js';
import { type AnyHandler, HandlerTable, type Responder, type SignalSource } from './serve.js';
import { callSite } from './stacks.js';

export { describeOrigin, isSystemName } from './names.js';
export { type BusOptions, DEFAULT_CALL_TIMEOUT_MS, type ResolvedCallOptions } from './options.js';
export type { Responder, SignalSource } from './serve.js';

/** The part of a bus that does not depend on where it runs. `C` is the contract. @category Buses */
export abstract class BaseBus<C extends Contract> extends EventEmitter<BusEvents, unknown> {
  /** The contract this bus was made with. */
  readonly contract: C;
  /** Who this process is: `'primary'` or its worker id. */
  abstract readonly self: Origin;
  /**
   * This process's node name with a mesh (`startCluster({ mesh: natsMesh({ node }) })`; a
   * worker learns it from its primary); `undefined` without a mesh.
   */
  get node(): string | undefined {
    return this.nodeName;
  }
  /** @internal Set by the mesh (primary), read from the environment (worker). */
  protected nodeName: string | undefined = process.env[NODE_ENV] || undefined;
  /** The checks, the encoding and the decoding of this bus's calls. */
  private readonly caller: Caller;
  /** The handler table: the user's and the system handlers, and serving requests with them. */
  private readonly table: HandlerTable;
  /** The subscribers, the user's and the system ones, and delivering events to them. */
  private readonly pubsub: PubSub;
  /** @internal The bus's own counters (calls, served, published), for the metrics extension. */
  readonly observer: BusObserver;
  /** @internal The user's handlers, by method (the table's; tests check what is registered). */
  readonly handlers: ReadonlyMap<string, AnyHandler>;
  /** @internal The user's subscribers, by topic (tests check what is registered). */
  readonly subscribers: ReadonlyMap<string, ReadonlySet<AnySubscriber>>;
  /** @internal */
  protected readonly systemSubscribers: Map<string, Set<SystemSubscriber>>;
  /** Default `timeoutMs` of calls, in ms. */
  protected readonly callTimeoutMs: number;
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
    const resolved = resolveBusOptions(options);
    this.observer = new BusObserver(contract);
    this.caller = new Caller(this, contract, resolved, this.observer);
    this.flowLimits = resolved.flowLimits;
    this.callSiteStacks = resolved.callSiteStacks;
    this.callTimeoutMs = resolved.callTimeoutMs;
    this.table = new HandlerTable(
      this,
      contract,
      resolved,
      () => this.handlersChanged(),
      this.observer,
    );
    this.handlers = this.table.handlers;
    this.pubsub = new PubSub(
      this,
      contract,
      resolved,
      this.localLoop,
      (e) => this.report(e),
      (pattern, subscribed) => this.subscriptionsChanged(pattern, subscribed),
      () => this.subscriptionsSynced(),
    );
    this.subscribers = this.pubsub.subscribers;
    this.systemSubscribers = this.pubsub.systemSubscribers;
  }

  /** Whether the bus is closed or closing: calls and publishes reject with `CLOSED`. */
  get isClosed(): boolean {
    return this.closing;
  }

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

  /** Tells the routing side that `pattern` got its first subscriber, or lost its last. */
  protected subscriptionsChanged(_pattern: string, _subscribed: boolean): void {}

  /** Resolves once the routing side has every subscription announced so far. */
  protected subscriptionsSynced(): Promise<void> {
    return Promise.resolve();
  }

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
    return this.table.add(method, handler as AnyHandler);
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
  call<M extends UnaryMethodName<C>>(
    target: Target,
    method: M,
    ...args: CallArgs<C, M>
  ): Promise<MethodOutput<C, M>> {
    const site = this.callSiteStacks ? callSite(this.call) : undefined;
    const route = this.route.bind(this);
    return this.caller.call(route, target, method, args, site) as Promise<MethodOutput<C, M>>;
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
  callAll<M extends UnaryMethodName<C>>(
    method: M,
    ...args: CallArgs<C, M>
  ): Promise<CallAllResult<MethodOutput<C, M>>[]> {
    const site = this.callSiteStacks ? callSite(this.callAll) : undefined;
    const gather = this.gather.bind(this);
    return this.caller.callAll(gather, method, args, site) as Promise<
      CallAllResult<MethodOutput<C, M>>[]
    >;
  }

  /** @internal Requests to the contract's methods this bus has served (answered or failed). */
  get servedCount(): number {
    return this.table.served;
  }

  /** Serves one request and answers through `responder`: see {@link HandlerTable.serve}. */
  protected serve(
    responder: Responder,
    id: number,
    method: string,
    payload: Encoded,
    caller: Origin,
    call: SignalSource,
  ): void {
    this.table.serve(responder, id, method, payload, caller, call);
  }

  /**
   * @internal The API of the installed extension `name` (kept after close), or `undefined`: for
   * the composition roots, which expose the extensions' APIs on the bus.
   */
  extensionApi(name: string): unknown {
    return this.ext.api(name);
  }

  /**
   * @internal Registers the handler of system method `name` (`$…`) in this process.
   * @returns a function that unregisters it.
   */
  systemHandle(name: string, handler: SystemHandler): () => void {
    return this.table.addSystem(name, handler);
  }

  /**
   * @internal Calls system method `name` (`$…`) on `target`, with superjson encoding and the
   * usual timeout, abort and exit handling, but no contract validation: the system protocol
   * validates what it receives. A BusError thrown by the handler arrives with its own code.
   */
  systemCall(
    name: string,
    target: Target,
    input: unknown,
    options?: CallOptions,
  ): Promise<unknown> {
    const site = this.callSiteStacks ? callSite(this.systemCall) : undefined;
    return this.caller.systemCall(this.route.bind(this), name, target, input, options, site);
  }

  /**
   * @internal Subscribes to system topic `name` (`$…`). System events are point to point (a
   * worker's go to the primary only; the primary's to the workers it names), are not validated
   * against the contract, and are delivered synchronously in arrival order.
   */
  systemSubscribe(name: string, subscriber: SystemSubscriber): () => void {
    return this.pubsub.systemSubscribe(name, subscriber);
  }

  // ------------------------------------------------------------------ extensions

  /** Which side of the cluster this bus is. */
  abstract readonly side: Side;

  /** The other processes, as this bus sees them (for extensions; `peers()` is the API's own). */
  protected abstract readonly peerView: Peers;

  /**
   * Sends system event `topic` (`$…`) to peer `to`; to itself (the hub to `HUB_ID`), through
   * the local loop. Returns false when `to` is not connected.
   */
  protected abstract sendSystem(to: PeerId, topic: string, payload: unknown): boolean;

  /** The installed extensions, their APIs, and their contexts. */
  private readonly ext = new Extensions(this, {
    peers: () => this.peerView,
    send: (to, topic, payload) => this.sendSystem(to, topic, payload),
    report: (error) => this.report(error),
  });

  /** Installed extensions, by name, in install order. */
  protected readonly extensions: ReadonlyMap<string, Installed<unknown>> = this.ext.installed;

  /**
   * @internal Installs `extension` on this bus: gives it its {@link ExtensionContext} (system
   * names `$<name>.<verb>`) and keeps what it returns, for the handshake and for close.
   * @throws {@link BusError} `INVALID_ARGUMENT` for a second extension of the same name.
   */
  install<Api>(extension: Extension<Api>): Api {
    return this.ext.install(extension);
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
    const encoded = this.pubsub.encodePublish(topic, payload);
    this.broadcast(topic, encoded);
    this.observer.publishedOn(topic);
    this.pubsub.deliverOwn(topic, encoded, this.self);
  }

  /**
   * Subscribes `handler` to a topic, or to a pattern with NATS subject semantics (`.` separates
   * tokens, `*` matches one token, a last `>` one or more trailing tokens), in this process. It
   * receives every event of a matching topic published by any process, validated against that
   * topic's schema (an invalid one is reported as `BAD_PAYLOAD` on `error`), with the concrete
   * topic as `context.topic`; its payload type is the union of the matching topics' payloads. One
   * that throws or rejects is reported as `SUBSCRIBER_FAILED` (docs/patterns-and-streams.md).
   *
   * @returns a function that unsubscribes; its `ready` resolves once the primary routes every
   *   process's events to it (a worker's subscription reaches the primary asynchronously).
   * @throws {@link BusError} (synchronously) `CLOSED` once the bus is closed or closing;
   *   `INVALID_ARGUMENT` for an invalid pattern (empty token, `>` not last, a wildcard inside a
   *   token), one that matches no topic (also a compile error), or a handler that is not a
   *   function; `LIMIT_EXCEEDED` past 10,000 distinct patterns in this process.
   */
  subscribe<T extends TopicName<C>>(
    topic: T,
    handler: (payload: EventPayload<C, T>, context: EventContext<T>) => void | Promise<void>,
  ): Subscription;
  subscribe<const P extends string>(
    pattern: P & TopicPattern<C, P>,
    handler: (
      payload: PatternPayload<C, P>,
      context: EventContext<MatchingTopics<C, P>>,
    ) => void | Promise<void>,
  ): Subscription;
  subscribe(pattern: string, handler: (payload: never, context: never) => unknown): Subscription {
    return this.pubsub.subscribe(pattern, handler as AnySubscriber);
  }

  /** Delivers an encoded event to this process's subscribers: see {@link PubSub.deliver}. */
  protected deliver(topic: string, payload: Encoded, source: Origin, deferred = false): void {
    this.pubsub.deliver(topic, payload, source, deferred);
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * Reports what has nobody to reject: on the `error` event, or as a process warning when nobody
   * listens, so nothing is dropped silently. Repeats are aggregated per code (the first 10 of
   * each second as they come, then one summary with `data.suppressed`): see `ReportSink`.
   */
  protected report(error: BusError): void {
    this.sink.report(error);
  }

  private emitReport(error: BusError): void {
    emitOrWarn(this, error);
  }

  /** Marks the bus closed and resolves `closed`; subclasses close their links first. */
  protected finishClose(): void {
    this.ext.close();
    this.sink.flush();
    this.localLoop.clear();
    this.table.clear();
    this.pubsub.clear();
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
