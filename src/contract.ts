/**
 * The contract: data that every process imports, with zod schemas for methods and events. Every
 * type of the bus's API is inferred from it.
 *
 * @module
 */
import type { z } from 'zod';
import { patternProblem } from './bus/topic-trie.js';
import { BusError } from './errors.js';
import { describeValue } from './util/describe.js';
import { readProperty as read } from './util/read.js';

/** Any zod schema. @category Contract */
export type Schema = z.ZodType;

/**
 * One method of a contract: an optional input schema (omit it for a method that takes no input)
 * and an optional output schema (omit it for a method that returns nothing), or, instead of
 * `output`, a `stream` schema: a streamed response, each item of which it validates.
 * @category Contract
 */
export interface MethodDef {
  /** The input schema; the receiving process validates every input with it (`BAD_INPUT`). */
  readonly input?: Schema;
  /** The output schema; the caller validates every result with it (`BAD_OUTPUT`). */
  readonly output?: Schema;
  /**
   * The schema of each item of a streamed response (`bus.stream`), instead of `output`: the
   * handler is an async generator, and the consumer validates every item (`BAD_OUTPUT`).
   */
  readonly stream?: Schema;
}

/** What {@link defineContract} takes. @category Contract */
export interface ContractDef {
  /** RPC methods by name. Names must not start with `$` (reserved for the bus's own protocols). */
  readonly methods?: Readonly<Record<string, MethodDef>>;
  /** Pub/sub topics by name, each with its payload schema. */
  readonly events?: Readonly<Record<string, Schema>>;
  /**
   * Shared stores by name, each with the schema of its values (keys are strings). The primary
   * holds them; every process reaches them with `bus.store(name)`.
   */
  readonly stores?: Readonly<Record<string, Schema>>;
  /**
   * The schema of the app's config: `startCluster({ config })` and `app.config.update(next)`
   * validate with it (`VALIDATION`), and every worker has the parsed value as
   * `bus.config.current` before `connect()` resolves.
   */
  readonly config?: Schema;
}

/**
 * A contract made by {@link defineContract}. `def` is what you passed in; the rest is for the bus.
 * `D` carries every type the API infers.
 * @category Contract
 */
export interface Contract<D extends ContractDef = ContractDef> {
  /** The definition exactly as given. */
  readonly def: D;
  /** Method definitions by name (no prototype, safe to index with names from the wire). */
  readonly methods: ReadonlyMap<string, MethodDef>;
  /** Event payload schemas by topic. */
  readonly events: ReadonlyMap<string, Schema>;
  /** Store value schemas by store name. */
  readonly stores: ReadonlyMap<string, Schema>;
  /** The config schema, or undefined when the contract has none. */
  readonly config: Schema | undefined;
}

const RESERVED = new Set(['then', 'constructor', 'prototype', '__proto__', 'toString', 'valueOf']);

function checkName(kind: string, name: string): void {
  if (name.length === 0 || name.startsWith('$') || RESERVED.has(name)) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `defineContract: ${kind} name '${name}' is reserved (names must be non-empty, not start with '$', and not be one of ${[...RESERVED].join(', ')})`,
    );
  }
}

/** The major version of zod whose schemas a contract takes (the `zod` peer dependency). */
const ZOD_MAJOR = 4;

/**
 * Why `value` is not a zod 4 schema, or `undefined` when it is one: zod 4 (classic or mini)
 * marks every schema with `_zod.version.major === 4`, zod 3 with a `_def.typeName` and no `_zod`.
 */
function notASchema(value: unknown): string | undefined {
  const internals = read(value, '_zod');
  const major = read(read(internals, 'version'), 'major');
  if (major === ZOD_MAJOR && typeof read(value, 'safeParse') === 'function') return undefined;
  if (internals === undefined && typeof read(read(value, '_def'), 'typeName') === 'string') {
    return `got a zod 3 schema; clusterbus needs zod ${ZOD_MAJOR} (the peer dependency zod@^${ZOD_MAJOR}): build it with \`import { z } from 'zod'\` from zod ${ZOD_MAJOR}, not from 'zod/v3'`;
  }
  if (typeof major === 'number') {
    return `got a schema of zod ${major}; clusterbus needs zod ${ZOD_MAJOR} (the peer dependency zod@^${ZOD_MAJOR})`;
  }
  return `got ${describeValue(value)}`;
}

/** Throws `INVALID_ARGUMENT` naming `what` unless `value` is a zod 4 schema. */
function checkSchema(what: string, value: unknown): asserts value is Schema {
  const problem = notASchema(value);
  if (problem !== undefined) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `defineContract: ${what} must be a zod schema: ${problem}`,
    );
  }
}

/**
 * Defines the contract every process of a cluster shares: methods (zod input and output schemas)
 * and events (a zod payload schema per topic). Holds no handlers; import it on both sides.
 *
 * @param def - `{ methods?: { name: { input?, output? } }, events?: { topic: schema },
 *   stores?: { name: schema }, config?: schema }`.
 * @returns the same definition wrapped as a {@link Contract}; `contract.def` is `def`.
 * @throws {@link BusError} `INVALID_ARGUMENT` (synchronously) for a reserved name (`$…`, `then`,
 *   `__proto__`, …) or a value that is not a zod 4 schema (a zod 3 schema included: zod `^4` is a
 *   peer dependency); the message names the method, topic, store or config entry.
 *
 * @example
 * ```ts
 * const contract = defineContract({
 *   methods: { add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() } },
 *   events: { 'cache.invalidate': z.object({ key: z.string() }) },
 * });
 * ```
 * @category Contract
 */
export function defineContract<const D extends ContractDef>(def: D): Contract<D> {
  const methods = new Map<string, MethodDef>();
  const events = new Map<string, Schema>();
  for (const [name, m] of Object.entries(def.methods ?? {})) {
    checkName('method', name);
    if (typeof m !== 'object' || m === null) {
      throw new BusError('INVALID_ARGUMENT', `defineContract: method '${name}' must be an object`);
    }
    for (const key of ['input', 'output', 'stream'] as const) {
      if (m[key] !== undefined) checkSchema(`method '${name}'.${key}`, m[key]);
    }
    if (m.output !== undefined && m.stream !== undefined) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `defineContract: method '${name}' has both 'output' and 'stream': a streamed method declares 'stream' only`,
      );
    }
    methods.set(name, Object.freeze({ ...m }));
  }
  for (const [name, schema] of Object.entries(def.events ?? {})) {
    checkName('event', name);
    const problem = patternProblem(name, true);
    if (problem !== undefined) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `defineContract: topic '${name}' is not a valid topic name (tokens separated by '.', as NATS subjects): ${problem}`,
      );
    }
    checkSchema(`event '${name}'`, schema);
    events.set(name, schema);
  }
  const stores = new Map<string, Schema>();
  for (const [name, schema] of Object.entries(def.stores ?? {})) {
    checkName('store', name);
    checkSchema(`store '${name}'`, schema);
    stores.set(name, schema);
  }
  if (def.config !== undefined) checkSchema('config', def.config);
  return Object.freeze({ def, methods, events, stores, config: def.config });
}

// ---------------------------------------------------------------------------------------------
// Types inferred from a contract.

type MethodsOf<C extends Contract> =
  C['def']['methods'] extends Readonly<Record<string, MethodDef>>
    ? C['def']['methods']
    : Record<never, never>;

type EventsOf<C extends Contract> =
  C['def']['events'] extends Readonly<Record<string, Schema>>
    ? C['def']['events']
    : Record<never, never>;

type StoresOf<C extends Contract> =
  C['def']['stores'] extends Readonly<Record<string, Schema>>
    ? C['def']['stores']
    : Record<never, never>;

/** The method names of contract `C`. @category Contract */
export type MethodName<C extends Contract> = keyof MethodsOf<C> & string;

/** The topics of contract `C`. @category Contract */
export type TopicName<C extends Contract> = keyof EventsOf<C> & string;

type Def<C extends Contract, M extends MethodName<C>> = MethodsOf<C>[M];

/** Whether method `M` declares an input schema. @category Contract */
export type HasInput<C extends Contract, M extends MethodName<C>> =
  Def<C, M> extends { readonly input: Schema } ? true : false;

/**
 * What a caller passes to method `M` (zod's input type of the input schema; `undefined` if none).
 * @category Contract
 */
export type MethodInput<C extends Contract, M extends MethodName<C>> =
  Def<C, M> extends { readonly input: infer S extends Schema } ? z.input<S> : undefined;

/**
 * What a handler of method `M` receives (zod's output type of the input schema, after parsing).
 * @category Contract
 */
export type HandlerInput<C extends Contract, M extends MethodName<C>> =
  Def<C, M> extends { readonly input: infer S extends Schema } ? z.output<S> : undefined;

/**
 * What a caller of method `M` gets (zod's output type of the output schema; `void` if none).
 * @category Contract
 */
export type MethodOutput<C extends Contract, M extends MethodName<C>> =
  Def<C, M> extends { readonly output: infer S extends Schema } ? z.output<S> : void;

/**
 * What a handler of method `M` returns (zod's input type of the output schema; `void` if none).
 * @category Contract
 */
export type HandlerOutput<C extends Contract, M extends MethodName<C>> =
  Def<C, M> extends { readonly output: infer S extends Schema } ? z.input<S> : void;

/** What a publisher passes for topic `T` (zod's input type). @category Contract */
export type EventInput<C extends Contract, T extends TopicName<C>> = z.input<EventsOf<C>[T]>;

/**
 * What a subscriber to topic `T` receives (zod's output type, after parsing).
 * @category Contract
 */
export type EventPayload<C extends Contract, T extends TopicName<C>> = z.output<EventsOf<C>[T]>;

/** The store names of contract `C`. @category Contract */
export type StoreName<C extends Contract> = keyof StoresOf<C> & string;

/**
 * What a reader of store `S` gets (zod's output type of the store's schema, after parsing).
 * @category Contract
 */
export type StoreValue<C extends Contract, S extends StoreName<C>> = z.output<StoresOf<C>[S]>;

/**
 * What a writer of store `S` passes (zod's input type of the store's schema).
 * @category Contract
 */
export type StoreInput<C extends Contract, S extends StoreName<C>> = z.input<StoresOf<C>[S]>;

/**
 * What `startCluster({ config })` and `app.config.update()` take (zod's input type of the
 * contract's config schema); `undefined` for a contract without one.
 * @category Contract
 */
export type ConfigInput<C extends Contract> = C['def']['config'] extends infer S extends Schema
  ? z.input<S>
  : undefined;

/**
 * What `bus.config.current` holds (zod's output type of the contract's config schema, after
 * parsing); `undefined` for a contract without one.
 * @category Contract
 */
export type ConfigValue<C extends Contract> = C['def']['config'] extends infer S extends Schema
  ? z.output<S>
  : undefined;

// ---------------------------------------------------------------------------------------------
// Topic patterns, at the type level: the topics of a contract a pattern matches.

/**
 * Whether topic `T` matches pattern `P`, token by token, with NATS subject semantics (`*` one
 * token, a last `>` one or more tokens). Distributes over both.
 * @category Contract
 */
export type TopicMatches<P extends string, T extends string> = P extends '>'
  ? T extends ''
    ? false
    : true
  : P extends `*.${infer PR}`
    ? T extends `${infer TH}.${infer TR}`
      ? TH extends ''
        ? false
        : TopicMatches<PR, TR>
      : false
    : P extends '*'
      ? T extends '' | `${string}.${string}`
        ? false
        : true
      : P extends `${infer PH}.${infer PR}`
        ? T extends `${PH}.${infer TR}`
          ? TopicMatches<PR, TR>
          : false
        : [P] extends [T]
          ? [T] extends [P]
            ? true
            : false
          : false;

/** The topics of contract `C` that pattern `P` matches (`never` if none). @category Contract */
export type MatchingTopics<C extends Contract, P extends string> = P extends string
  ? { [T in TopicName<C>]: TopicMatches<P, T> extends true ? T : never }[TopicName<C>]
  : never;

/**
 * What `subscribe` takes as its pattern: `P` itself when it matches a topic of `C`, `never`
 * otherwise (so a pattern that matches no topic is a compile error).
 * @category Contract
 */
export type TopicPattern<C extends Contract, P extends string> = [MatchingTopics<C, P>] extends [
  never,
]
  ? never
  : P;

/**
 * What a subscriber to pattern `P` receives: the union of its matching topics' payloads.
 * @category Contract
 */
export type PatternPayload<C extends Contract, P extends string> = EventPayload<
  C,
  MatchingTopics<C, P>
>;

// ---------------------------------------------------------------------------------------------
// Streamed methods.

/** The methods of `C` that declare `stream` (called with `bus.stream`). @category Contract */
export type StreamMethodName<C extends Contract> = {
  [M in MethodName<C>]: Def<C, M> extends { readonly stream: Schema } ? M : never;
}[MethodName<C>];

/**
 * The methods of `C` that do not stream (called with `bus.call` and `bus.callAll`).
 * @category Contract
 */
export type UnaryMethodName<C extends Contract> = Exclude<MethodName<C>, StreamMethodName<C>>;

/**
 * What a consumer of stream method `M` gets for each item (zod's output type, after parsing).
 * @category Contract
 */
export type StreamItem<C extends Contract, M extends MethodName<C>> =
  Def<C, M> extends { readonly stream: infer S extends Schema } ? z.output<S> : never;

/**
 * What the generator of stream method `M` yields (zod's input type of the stream schema).
 * @category Contract
 */
export type HandlerStreamItem<C extends Contract, M extends MethodName<C>> =
  Def<C, M> extends { readonly stream: infer S extends Schema } ? z.input<S> : never;

/**
 * What a handler of method `M` returns: its output (or a promise of it), or, for a stream
 * method, an async iterable of the stream schema's input type (an async generator).
 * @category Contract
 */
export type HandlerResult<C extends Contract, M extends MethodName<C>> =
  Def<C, M> extends { readonly stream: infer S extends Schema }
    ? AsyncIterable<z.input<S>>
    : HandlerOutput<C, M> | Promise<HandlerOutput<C, M>>;
