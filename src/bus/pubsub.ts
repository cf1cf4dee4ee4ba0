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

/** A user's subscriber, as the bus keeps it. */
export type AnySubscriber = (payload: unknown, ctx: EventContext) => unknown;

/** The subscribers of one bus, user and system, and delivering events to them. */
export class PubSub {
  /** The user's subscribers, by topic. */
  readonly subscribers = new Map<string, Set<AnySubscriber>>();
  /** The system subscribers, by topic (`$…`). */
  readonly systemSubscribers = new Map<string, Set<SystemSubscriber>>();
  private readonly maxPayloadBytes: number;
  private readonly maxDepth: number;

  /**
   * @param localLoop - where this process's own publishes are delivered from.
   * @param report - where what has nobody to reject goes (the bus's `error` event).
   */
  constructor(
    private readonly bus: { readonly isClosed: boolean },
    private readonly contract: Contract,
    limits: PayloadLimits,
    private readonly localLoop: LocalLoop,
    private readonly report: (error: BusError) => void,
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
    return encode(payload, this.maxPayloadBytes, this.maxDepth);
  }

  /**
   * Subscribes the user's `handler` to `topic`; returns a function that unsubscribes.
   * @throws a `BusError` `CLOSED` or `INVALID_ARGUMENT`, as `subscribe` documents.
   */
  subscribe(topic: string, handler: AnySubscriber): () => void {
    if (this.bus.isClosed) throw new BusError('CLOSED', `subscribe '${topic}': the bus is closed`);
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
    return add(this.subscribers, topic, handler);
  }

  /** Subscribes to system topic `name` (`$…`); returns a function that unsubscribes. */
  systemSubscribe(name: string, subscriber: SystemSubscriber): () => void {
    return add(this.systemSubscribers, name, subscriber);
  }

  /** Unsubscribes everyone (on close). */
  clear(): void {
    this.systemSubscribers.clear();
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
    if (!this.subscribers.has(topic)) return;
    if (deferred) this.localLoop.post(() => this.dispatchEvent(topic, payload, source));
    else this.dispatchEvent(topic, payload, source);
  }

  /**
   * Delivers this process's own publish to its subscribers, deferred: a copy, while the frame
   * itself waits to be sent to the other processes.
   */
  deliverOwn(topic: string, encoded: Encoded, self: Origin): void {
    this.deliver(topic, this.subscribers.has(topic) ? cloneEncoded(encoded) : encoded, self, true);
  }

  private dispatchEvent(topic: string, payload: Encoded, source: Origin): void {
    const set = this.subscribers.get(topic);
    if (set === undefined || this.bus.isClosed) return;
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
