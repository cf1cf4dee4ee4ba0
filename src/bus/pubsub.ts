/**
 * Publish/subscribe in one process: the subscribers of a bus (the user's, checked against the
 * contract, and the system subscribers of its extensions), checking a publish, and delivering an
 * event to this process's subscribers after validating it. Sending it to the other processes is
 * the bus's routing.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import type { EventContext, Origin, SystemSubscriber } from '../core/types.js';
import { BusError, summarizeIssues, toBusError, toIssues, toRemoteError } from '../errors.js';
import { cloneEncoded, decode, encode } from '../protocol/codec.js';
import type { Encoded } from '../protocol/envelope.js';
import type { LocalLoop } from './local-loop.js';
import { describeOrigin, isSystemName } from './names.js';
import type { PayloadLimits } from './options.js';
import { isWildcard, matches, patternProblem, TopicTrie } from './topic-trie.js';

/** A user's subscriber, as the bus keeps it. */
export type AnySubscriber = (payload: unknown, ctx: EventContext) => unknown;

/**
 * The most distinct patterns (exact topics included) one process may subscribe to at once:
 * `subscribe` past it throws `LIMIT_EXCEEDED`, and the hub ignores (and reports) a worker's
 * announcement past it.
 */
export const MAX_PATTERNS_PER_PROCESS = 10_000;

/**
 * What `subscribe` returns: the unsubscribe function, and when the subscription is in effect.
 * @category Buses
 */
export interface Subscription {
  (): void;
  /**
   * Resolves once every process's events reach this subscription: at once in the primary; in a
   * worker, once the primary has registered it (one round trip, started when `ready` is first
   * read). Rejects with `CLOSED` or `TIMEOUT` if the primary cannot say.
   */
  readonly ready: Promise<void>;
}

/** The subscribers of one bus, user and system, and delivering events to them. */
export class PubSub {
  /** The user's subscribers, by pattern (a topic, or a pattern with wildcards). */
  readonly subscribers = new Map<string, Set<AnySubscriber>>();
  /** The patterns of {@link subscribers}, to find those an event's topic matches. */
  private readonly patterns = new TopicTrie<string>();
  /** The system subscribers, by topic (`$…`). */
  readonly systemSubscribers = new Map<string, Set<SystemSubscriber>>();
  private readonly maxPayloadBytes: number;
  private readonly maxDepth: number;

  /**
   * @param localLoop - where this process's own publishes are delivered from.
   * @param report - where what has nobody to reject goes (the bus's `error` event).
   * @param changed - a pattern got its first subscriber (`true`) or lost its last (`false`).
   */
  constructor(
    private readonly bus: { readonly isClosed: boolean },
    private readonly contract: Contract,
    limits: PayloadLimits,
    private readonly localLoop: LocalLoop,
    private readonly report: (error: BusError) => void,
    private readonly changed: (pattern: string, subscribed: boolean) => void = () => {},
    private readonly sync: () => Promise<void> = () => Promise.resolve(),
  ) {
    this.maxPayloadBytes = limits.maxPayloadBytes;
    this.maxDepth = limits.maxDepth;
  }

  /**
   * Checks a publish of `payload` on `topic` and encodes it.
   * @throws a `BusError` `CLOSED`, `INVALID_ARGUMENT` or `BAD_PAYLOAD`, as `publish` documents.
   */
  encodePublish(topic: string, payload: unknown): Encoded {
    if (this.bus.isClosed) throw new BusError('CLOSED', `publish '${topic}': the bus is closed`);
    const schema = this.contract.events.get(topic);
    if (schema === undefined) {
      const wildcard = typeof topic === 'string' && patternProblem(topic, true) !== undefined;
      throw new BusError(
        'INVALID_ARGUMENT',
        wildcard && patternProblem(topic) === undefined
          ? `publish: '${topic}' is a pattern; publish to a concrete topic of the contract`
          : `publish: '${topic}' is not a topic of the contract`,
      );
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
    return encode(payload, this.maxPayloadBytes, this.maxDepth);
  }

  /**
   * Subscribes the user's `handler` to `pattern` (a topic, or a pattern with NATS wildcards);
   * returns a function that unsubscribes.
   * @throws a `BusError` `CLOSED`, `INVALID_ARGUMENT` or `LIMIT_EXCEEDED`, as `subscribe` documents.
   */
  subscribe(pattern: string, handler: AnySubscriber): Subscription {
    if (this.bus.isClosed)
      throw new BusError('CLOSED', `subscribe '${pattern}': the bus is closed`);
    const problem = typeof pattern === 'string' ? patternProblem(pattern) : 'it is not a string';
    if (problem !== undefined) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `subscribe: '${pattern}' is not a valid pattern: ${problem}`,
      );
    }
    if (!isWildcard(pattern) ? !this.contract.events.has(pattern) : !this.matchesSome(pattern)) {
      throw new BusError(
        'INVALID_ARGUMENT',
        isWildcard(pattern)
          ? `subscribe: '${pattern}' matches no topic of the contract`
          : `subscribe: '${pattern}' is not a topic of the contract`,
      );
    }
    if (typeof handler !== 'function') {
      throw new BusError(
        'INVALID_ARGUMENT',
        `subscribe: the handler of '${pattern}' must be a function`,
      );
    }
    let set = this.subscribers.get(pattern);
    if (set === undefined) {
      if (this.subscribers.size >= MAX_PATTERNS_PER_PROCESS) {
        throw new BusError(
          'LIMIT_EXCEEDED',
          `subscribe '${pattern}': this process already subscribes to ${MAX_PATTERNS_PER_PROCESS} patterns`,
          { data: { limit: 'patternsPerProcess', value: MAX_PATTERNS_PER_PROCESS } },
        );
      }
      set = new Set();
      this.subscribers.set(pattern, set);
      this.patterns.add(pattern, pattern);
      this.changed(pattern, true);
    }
    set.add(handler);
    const off = () => {
      const current = this.subscribers.get(pattern);
      if (current?.delete(handler) && current.size === 0) {
        this.subscribers.delete(pattern);
        this.patterns.remove(pattern, pattern);
        if (!this.bus.isClosed) this.changed(pattern, false);
      }
    };
    let ready: Promise<void> | undefined;
    return Object.defineProperty(off, 'ready', {
      get: () => {
        ready ??= this.sync();
        return ready;
      },
    }) as Subscription;
  }

  /** Whether wildcard `pattern` matches a topic of the contract. */
  private matchesSome(pattern: string): boolean {
    for (const topic of this.contract.events.keys()) if (matches(pattern, topic)) return true;
    return false;
  }

  /** Subscribes to system topic `name` (`$…`); returns a function that unsubscribes. */
  systemSubscribe(name: string, subscriber: SystemSubscriber): () => void {
    return add(this.systemSubscribers, name, subscriber);
  }

  /** Unsubscribes everyone (on close). */
  clear(): void {
    this.systemSubscribers.clear();
    for (const pattern of this.subscribers.keys()) this.patterns.remove(pattern, pattern);
    this.subscribers.clear();
  }

  /**
   * Delivers an encoded event to this process's subscribers, after validating it. Events from
   * other processes are delivered as they arrive, in order with the requests from the same
   * sender; this process's own publishes are `deferred` by a microtask, so `publish` never calls
   * a subscriber from inside itself.
   */
  deliver(topic: string, payload: Encoded, source: Origin, deferred: boolean): void {
    if (isSystemName(topic)) {
      this.deliverSystem(topic, payload, source);
      return;
    }
    if (!this.patterns.has(topic)) return;
    if (deferred) this.localLoop.post(() => this.dispatchEvent(topic, payload, source));
    else this.dispatchEvent(topic, payload, source);
  }

  /**
   * Delivers this process's own publish to its subscribers, deferred: a copy, while the frame
   * itself waits to be sent to the other processes.
   */
  deliverOwn(topic: string, encoded: Encoded, self: Origin): void {
    this.deliver(topic, this.patterns.has(topic) ? cloneEncoded(encoded) : encoded, self, true);
  }

  private dispatchEvent(topic: string, payload: Encoded, source: Origin): void {
    if (this.bus.isClosed) return;
    const sets: Set<AnySubscriber>[] = [];
    this.patterns.match(topic, (pattern) => {
      const set = this.subscribers.get(pattern);
      if (set !== undefined) sets.push(set);
    });
    if (sets.length === 0) return;
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
    for (const subscriber of sets.length === 1 ? [...sets[0]!] : sets.flatMap((set) => [...set])) {
      try {
        const r = subscriber(value, ctx);
        if (r instanceof Promise) r.catch((error: unknown) => this.subscriberFailed(topic, error));
      } catch (error) {
        this.subscriberFailed(topic, error);
      }
    }
  }

  private subscriberFailed(topic: string, error: unknown): void {
    const remote = toRemoteError(error, `a subscriber of '${topic}'`);
    this.report(new BusError('SUBSCRIBER_FAILED', remote.message, { cause: remote.cause }));
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
}

/** Adds `member` to the set of `key`; returns a function that removes it (and an empty set). */
function add<T>(sets: Map<string, Set<T>>, key: string, member: T): () => void {
  let set = sets.get(key);
  if (set === undefined) {
    set = new Set();
    sets.set(key, set);
  }
  set.add(member);
  return () => {
    const current = sets.get(key);
    if (current?.delete(member) && current.size === 0) sets.delete(key);
  };
}
