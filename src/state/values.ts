/**
 * The hub side: what a store keeps, the output of its schema, checked once, where the host applies
 * a write, to be a value the store can give back (and whether a schema takes numbers). Every reader
 * parses it again with its own schema, the primary sends it back within the bus's limits, and a
 * snapshot carries it; a value that fails any of these is refused when written, and nothing
 * changes.
 *
 * @module
 */
import type { Schema } from '../contract.js';
import { BusError, summarizeIssues, toIssues } from '../errors.js';
import { encode } from '../protocol/codec.js';

/** The bus limits a kept value must fit, to be sent back to any reader. */
export interface ValueLimits {
  /** The bus's `maxPayloadBytes`, in bytes of JSON text. */
  readonly maxPayloadBytes: number;
  /** The bus's `maxDepth`, in levels of arrays and objects. */
  readonly maxDepth: number;
}

/**
 * Parses `input` with the store's schema and returns the value to keep: the schema's output.
 *
 * Cheap for the common case: a number, string, boolean or null that the schema returned as it
 * was given (every `increment`) needs no more than the parse. Anything else is also checked to:
 * - pass the schema again (readers parse what the store holds: a transform to another type
 *   would make every read fail);
 * - hold only what the codec carries as it is (no function, symbol, class instance...);
 * - encode, within `limits`, as the answer to a read would carry it (this is also what a
 *   snapshot writes, so whatever is kept can be persisted and restored).
 *
 * @param what - the store and key, for messages: `store 'users' key 'u1'`.
 * @throws {@link BusError} `BAD_INPUT` (with zod's `issues`) when the value fails the schema, or
 *   the schema's output does not pass it again; `PAYLOAD_TOO_DEEP` / `PAYLOAD_TOO_LARGE` (with
 *   `data` naming the limit) when the output is deeper than `maxDepth` or larger than
 *   `maxPayloadBytes`; `INVALID_ARGUMENT` (with `data.path` where it can tell) when it holds what
 *   the codec cannot carry as it is: a function, a symbol, an instance of a class (`Error`
 *   included), a sparse array, an invalid `Date`, a `__proto__`, `constructor` or `prototype` key
 *   next to a `Date`, `Map`, `Set` or `BigInt`.
 */
export function keepable(
  schema: Schema,
  what: string,
  input: unknown,
  limits: ValueLimits,
): unknown {
  const output = parse(schema, what, input, "the value fails the store's schema");
  if (output === undefined) {
    throw new BusError(
      'BAD_INPUT',
      `${what}: the store's schema turned the value into undefined, which a store cannot keep (use delete)`,
    );
  }
  const same = Object.is(output, input);
  if (same && isSmallPrimitive(output, limits)) return output;
  if (!same) {
    parse(
      schema,
      what,
      output,
      "the store's schema does not accept its own output (a transform to another type?), so no read could pass it",
    );
  }
  const odd = uncarried(output, limits.maxDepth);
  if (odd !== undefined) {
    const where = odd.path.length === 0 ? 'the value' : `at ${formatPath(odd.path)}`;
    throw new BusError(
      'INVALID_ARGUMENT',
      `${what}: the store cannot keep this value: ${where}, ${odd.what}, which no read could give back as it was`,
      { data: { path: odd.path } },
    );
  }
  try {
    // A read's answer, at its largest: the value, its revision and its expiry.
    encode({ v: output, r: 1, x: 0 }, limits.maxPayloadBytes, limits.maxDepth);
  } catch (error) {
    const cause = error instanceof BusError ? error : undefined;
    const code = cause?.code ?? 'INVALID_ARGUMENT';
    const why = error instanceof Error ? error.message : String(error);
    throw new BusError(code, `${what}: the store cannot keep this value: ${why}`, {
      cause: error,
      ...(cause?.data === undefined ? {} : { data: cause.data }),
    });
  }
  return output;
}

/**
 * The prototypes of the objects the codec carries as they are (superjson's built-in types, but
 * `Error`, which loses its own properties, and the float arrays, which lose NaN and Infinity).
 */
const CARRIED: ReadonlySet<object | null> = new Set<object | null>([
  Object.prototype,
  null,
  Array.prototype,
  Date.prototype,
  RegExp.prototype,
  Map.prototype,
  Set.prototype,
  URL.prototype,
  Int8Array.prototype,
  Uint8Array.prototype,
  Uint8ClampedArray.prototype,
  Int16Array.prototype,
  Uint16Array.prototype,
  Int32Array.prototype,
  Uint32Array.prototype,
]);

/** A part of a value that the codec would drop or change, and where it is. */
interface Uncarried {
  readonly path: (string | number)[];
  readonly what: string;
}

/**
 * The first part of `value` the codec would not carry as it is (a function, a symbol, an instance
 * of a class, a sparse array, an invalid Date...), or undefined. Stops descending past `maxDepth`
 * (the encoder then refuses the value as too deep).
 */
function uncarried(value: unknown, maxDepth: number, depth = 0): Uncarried | undefined {
  switch (typeof value) {
    case 'function':
      return { path: [], what: 'a function' };
    case 'symbol':
      return { path: [], what: 'a symbol' };
    case 'object':
      break;
    default:
      return undefined;
  }
  if (value === null || depth > maxDepth) return undefined;
  const next = depth + 1;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return instance(value);
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) return { path: [i], what: 'a hole (a sparse array)' };
      const item: unknown = value[i];
      if (isLeaf(item)) continue;
      const found = uncarried(item, maxDepth, next);
      if (found !== undefined) return within(i, found);
    }
    return symbolKeyed(value);
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      const item = (value as Record<string, unknown>)[key];
      if (isLeaf(item)) continue;
      const found = uncarried(item, maxDepth, next);
      if (found !== undefined) return within(key, found);
    }
    return symbolKeyed(value);
  }
  if (!CARRIED.has(proto as object)) return instance(value);
  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? { path: [], what: 'an invalid Date' } : undefined;
  }
  if (value instanceof Map) {
    let i = 0;
    for (const [k, v] of value) {
      const found = uncarried(k, maxDepth, next);
      if (found !== undefined) return within(`<key ${i}>`, found);
      const inValue = uncarried(v, maxDepth, next);
      if (inValue !== undefined) return within(`<value ${i}>`, inValue);
      i++;
    }
  } else if (value instanceof Set) {
    let i = 0;
    for (const item of value) {
      const found = uncarried(item, maxDepth, next);
      if (found !== undefined) return within(`<item ${i}>`, found);
      i++;
    }
  }
  return symbolKeyed(value); // and RegExp, URL, typed arrays: nothing inside to check
}

/** A string, number, boolean, bigint, undefined or null: carried as it is. */
function isLeaf(value: unknown): boolean {
  const type = typeof value;
  return value === null || (type !== 'object' && type !== 'function' && type !== 'symbol');
}

function within(key: string | number, found: Uncarried): Uncarried {
  found.path.unshift(key);
  return found;
}

function instance(value: object): Uncarried {
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return { path: [], what: `an instance of ${typeof name === 'string' ? name : 'a class'}` };
}

function symbolKeyed(value: object): Uncarried | undefined {
  return Object.getOwnPropertySymbols(value).length > 0
    ? { path: [], what: 'a symbol key' }
    : undefined;
}

function formatPath(path: readonly (string | number)[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))
    .join('')
    .replace(/^\./, '');
}

function isSmallPrimitive(value: unknown, limits: ValueLimits): boolean {
  switch (typeof value) {
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'string':
      return value.length + 64 < limits.maxPayloadBytes; // measured as the codec does
    case 'object':
      return value === null;
    default:
      return false;
  }
}

function parse(schema: Schema, what: string, value: unknown, failure: string): unknown {
  let parsed: ReturnType<Schema['safeParse']>;
  try {
    parsed = schema.safeParse(value);
  } catch (cause) {
    throw new BusError(
      'BAD_INPUT',
      `${what}: the value could not be validated (an async schema?)`,
      { cause },
    );
  }
  if (!parsed.success) {
    throw new BusError(
      'BAD_INPUT',
      `${what}: ${failure}: ${summarizeIssues(parsed.error.issues, 'value')}`,
      { issues: toIssues(parsed.error.issues) },
    );
  }
  return parsed.data;
}

/**
 * Whether a store's schema takes numbers (as written), so `increment` applies: `z.number()` and
 * its checks and formats, through `optional`, `nullable`, `default`, `readonly`, `catch` and the
 * input side of a `pipe`/`transform`.
 */
export function isNumberSchema(schema: Schema): boolean {
  let def = defOf(schema);
  for (let depth = 0; def !== undefined && depth < 16; depth++) {
    if (def.type === 'number') return true;
    const inner = def.innerType ?? def.in;
    def = inner === undefined ? undefined : defOf(inner);
  }
  return false;
}

interface DefLike {
  readonly type?: unknown;
  readonly innerType?: unknown;
  readonly in?: unknown;
}

function defOf(schema: unknown): DefLike | undefined {
  if (typeof schema !== 'object' || schema === null) return undefined;
  const def = (schema as { def?: unknown }).def;
  return typeof def === 'object' && def !== null ? (def as DefLike) : undefined;
}
