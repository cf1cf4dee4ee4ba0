/**
 * Payload encoding. Values that are plain JSON (strings, finite numbers, booleans, null, arrays
 * and plain objects of those, no `undefined`) travel as a copy of themselves: no superjson walk
 * on either side. Everything else goes through superjson, so `Date`, `Map`, `Set`, `BigInt`,
 * `RegExp` and `undefined` inside objects arrive as they left. Either way the result is
 * JSON-safe, rides inside the envelope, and is a snapshot taken when the call or publish was
 * issued (a later mutation of the caller's object does not leak into the message).
 *
 * @module
 */
import superjson from 'superjson';
import { BusError } from '../errors.js';
import type { Encoded } from './envelope.js';

const NOT_PLAIN = Symbol('not plain');
/** Thrown inside {@link plainCopy} past the depth limit (caught by {@link encodeInto}). */
const TOO_DEEP = Symbol('too deep');
/** The JSON length of what {@link plainCopy} or {@link measure} last walked (approximate). */
let walked = 0;
/** The depth limit of the walk under way. */
let depthLimit = 0;

/**
 * Default `maxDepth`: how many levels of arrays and objects a payload may nest, as its JSON form
 * has them.
 */
export const DEFAULT_MAX_DEPTH = 128;

/** The largest `maxDepth` a bus accepts: deeper, V8's own JSON serializer may run out of stack. */
export const MAX_MAX_DEPTH = 1_000;

/**
 * The encoded size of a payload in bytes (approximately its JSON length), recorded by
 * {@link encodeInto} and by {@link checkEncoded}, so queues count what they really hold without a
 * second walk. A symbol key: JSON (and so Node's IPC channel) leaves it out.
 */
export const SIZE: unique symbol = Symbol('clusterbus.size');

/** An encoded payload whose size may have been recorded. */
export type Sized = Encoded & { [SIZE]?: number };

/**
 * Copies a plain-JSON value (containers copied, strings shared); returns NOT_PLAIN at the first
 * value JSON would not carry exactly. Throws TOO_DEEP past `depthLimit`.
 */
function plainCopy(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
      walked += value.length + 2;
      return value;
    case 'number':
      if (!Number.isFinite(value) || Object.is(value, -0)) return NOT_PLAIN;
      walked += 8;
      return value;
    case 'boolean':
      walked += 5;
      return value;
    case 'object': {
      if (value === null) {
        walked += 4;
        return null;
      }
      if (depth >= depthLimit) throw TOO_DEEP;
      if (Array.isArray(value)) {
        const out = new Array<unknown>(value.length);
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) return NOT_PLAIN; // a hole would arrive as null
          const v = plainCopy(value[i], depth + 1);
          if (v === NOT_PLAIN) return NOT_PLAIN;
          out[i] = v;
        }
        walked += value.length + 2;
        return out;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return NOT_PLAIN;
      const out: Record<string, unknown> = {};
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        const v = plainCopy((value as Record<string, unknown>)[key], depth + 1);
        if (v === NOT_PLAIN) return NOT_PLAIN;
        if (key === '__proto__')
          Object.defineProperty(out, key, {
            value: v,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        else out[key] = v;
        walked += key.length + 4;
      }
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return NOT_PLAIN;
      // Symbol keys are not looked for (Object.getOwnPropertySymbols allocated an array per
      // object): JSON leaves them out, and so does superjson, so the message is the same.
      return out;
    }
    default:
      return NOT_PLAIN; // undefined, bigint, symbol, function
  }
}

/**
 * Adds the JSON length of a JSON value to `walked`, counted exactly as {@link plainCopy} counts,
 * so a receiver measures what its sender measured. Returns false past `depthLimit` (and stops).
 */
function measure(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
      walked += value.length + 2;
      return true;
    case 'boolean':
      walked += 5;
      return true;
    case 'object': {
      if (value === null) {
        walked += 4;
        return true;
      }
      if (depth >= depthLimit) return false;
      if (Array.isArray(value)) {
        walked += value.length + 2;
        for (let i = 0; i < value.length; i++) if (!measure(value[i], depth + 1)) return false;
        return true;
      }
      for (const key in value) {
        walked += key.length + 4;
        if (!measure((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      walked += 8;
      return true;
  }
}

/** superjson's meta mirrors the JSON's paths under a wrapper or two: it may nest this much more. */
const META_DEPTH_SLACK = 4;

/** Limits a payload is encoded or received under. */
export interface PayloadLimits {
  /** The largest payload, in bytes of JSON text (approximately: string lengths). */
  readonly maxBytes: number;
  /** The deepest nesting of arrays and objects in the payload's JSON. */
  readonly maxDepth: number;
}

const UNLIMITED: PayloadLimits = {
  maxBytes: Number.POSITIVE_INFINITY,
  maxDepth: DEFAULT_MAX_DEPTH,
};

/**
 * Encodes `value` into the envelope's `p`/`q` fields of `target`, and records its size under
 * {@link SIZE}. `undefined` leaves both absent.
 *
 * @param maxBytes - refuse a payload whose JSON text would be longer than this (approximately:
 *   counted in string length, as the channel writes it).
 * @param maxDepth - refuse a payload whose JSON nests arrays and objects deeper than this.
 * @throws {@link BusError} only: `PAYLOAD_TOO_LARGE` over `maxBytes`, `PAYLOAD_TOO_DEEP` over
 *   `maxDepth`, `INVALID_ARGUMENT` (with the original as `cause`) for a value that cannot be
 *   serialized (a throwing getter, a circular structure superjson refuses).
 */
export function encodeInto(
  target: Encoded,
  value: unknown,
  maxBytes = Number.POSITIVE_INFINITY,
  maxDepth = DEFAULT_MAX_DEPTH,
): void {
  if (value === undefined) return;
  walked = 0;
  depthLimit = maxDepth;
  let copy: unknown;
  try {
    copy = plainCopy(value, 0);
  } catch (error) {
    throw encodeFailure(error, maxDepth);
  }
  if (copy !== NOT_PLAIN) {
    if (walked > maxBytes) throw tooLarge(walked, maxBytes);
    target.p = copy;
    (target as Sized)[SIZE] = walked;
    return;
  }
  let json: unknown;
  let meta: unknown;
  try {
    ({ json, meta } = superjson.serialize(value));
  } catch (error) {
    throw encodeFailure(error, maxDepth);
  }
  walked = 0;
  if (!measure(json, 0)) throw tooDeep(maxDepth);
  depthLimit = maxDepth + META_DEPTH_SLACK;
  if (!measure(meta, 0)) throw tooDeep(maxDepth);
  if (walked > maxBytes) throw tooLarge(walked, maxBytes);
  target.p = json;
  if (meta !== undefined) target.q = meta;
  (target as Sized)[SIZE] = walked;
}

function encodeFailure(error: unknown, maxDepth: number): BusError {
  // A stack overflow is superjson walking a value deeper than it can: too deep. Other range
  // errors (an invalid Date's toISOString) are values that cannot be encoded.
  if (error === TOO_DEEP || (error instanceof RangeError && /call stack/i.test(error.message))) {
    return tooDeep(maxDepth);
  }
  if (error instanceof BusError) return error;
  let why: string;
  try {
    why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } catch {
    why = 'a value that could not be described was thrown';
  }
  return new BusError('INVALID_ARGUMENT', `the payload cannot be encoded (${why})`, {
    cause: error,
  });
}

function tooLarge(size: number, maxBytes: number): BusError {
  return new BusError(
    'PAYLOAD_TOO_LARGE',
    `the payload is about ${size} bytes as JSON, over maxPayloadBytes (${maxBytes})`,
    { data: { limit: 'maxPayloadBytes', value: maxBytes } },
  );
}

function tooDeep(maxDepth: number): BusError {
  return new BusError(
    'PAYLOAD_TOO_DEEP',
    `the payload nests arrays and objects deeper than maxDepth (${maxDepth} levels)`,
    { data: { limit: 'maxDepth', value: maxDepth } },
  );
}

/** Encodes a value as a fresh {@link Encoded}. See {@link encodeInto}. */
export function encode(value: unknown, maxBytes?: number, maxDepth?: number): Encoded {
  const out: Encoded = {};
  encodeInto(out, value, maxBytes, maxDepth);
  return out;
}

/**
 * Checks an encoded payload as it was received (the sender may not have checked it), and
 * records its size under {@link SIZE}. Cost: one walk of the payload, no allocation.
 *
 * @returns `undefined` when it is within `limits`, else the `PAYLOAD_TOO_LARGE` or
 *   `PAYLOAD_TOO_DEEP` error that refuses it.
 */
export function checkEncoded(
  source: Encoded,
  limits: PayloadLimits = UNLIMITED,
): BusError | undefined {
  walked = 0;
  depthLimit = limits.maxDepth;
  if (source.p !== undefined && !measure(source.p, 0)) return tooDeep(limits.maxDepth);
  if (source.q !== undefined) {
    depthLimit = limits.maxDepth + META_DEPTH_SLACK;
    if (!measure(source.q, 0)) return tooDeep(limits.maxDepth);
  }
  if (walked > limits.maxBytes) return tooLarge(walked, limits.maxBytes);
  (source as Sized)[SIZE] = walked;
  return undefined;
}

/**
 * Checks a JSON value received from the wire that is not a payload (an error's wire form, a list
 * of names) against `limits`: the same walk as {@link checkEncoded}.
 *
 * @returns the size in bytes, or the error that refuses it.
 */
export function checkValue(value: unknown, limits: PayloadLimits): number | BusError {
  walked = 0;
  depthLimit = limits.maxDepth;
  if (!measure(value, 0)) return tooDeep(limits.maxDepth);
  if (walked > limits.maxBytes) return tooLarge(walked, limits.maxBytes);
  return walked;
}

/**
 * The size of an encoded payload in bytes, for batching and queue bounds: the one recorded when
 * it was encoded or received, else measured now (exactly, as {@link encodeInto} counts).
 */
export function encodedSize(source: Encoded): number {
  const known = (source as Sized)[SIZE];
  if (known !== undefined) return 16 + known;
  walked = 0;
  depthLimit = MAX_MAX_DEPTH + META_DEPTH_SLACK;
  if (source.p !== undefined) measure(source.p, 0);
  if (source.q !== undefined) measure(source.q, 0);
  return 16 + walked;
}

/**
 * How a peer checks the payloads it receives and sizes the ones it sends: the seam between the
 * JSON codec of the cluster's IPC links ({@link JSON_PAYLOADS}) and a link whose values travel
 * by structured clone (worker threads), which has no JSON text to walk.
 */
export interface PayloadCodec {
  /** Checks a received payload against `limits`: `undefined` when within, else the refusal. */
  readonly check: (source: Encoded, limits: PayloadLimits) => BusError | undefined;
  /** The approximate size of a payload in bytes, for batching and the queue bounds. */
  readonly size: (source: Encoded) => number;
}

/** The JSON codec's checks: {@link checkEncoded} and {@link encodedSize}. */
export const JSON_PAYLOADS: PayloadCodec = { check: checkEncoded, size: encodedSize };

/** Copies an encoded payload's fields (`p`, `q` and its recorded size) onto `target`. */
export function copyPayload(target: Encoded, source: Encoded): void {
  if (source.p !== undefined) target.p = source.p;
  if (source.q !== undefined) target.q = source.q;
  const size = (source as Sized)[SIZE];
  if (size !== undefined) (target as Sized)[SIZE] = size;
}

/**
 * Decodes the `p`/`q` fields back into a value. A frame with neither is `undefined`; one without
 * `q` is plain JSON and is returned as it is (it is the receiver's own copy, fresh from the
 * channel).
 *
 * @throws {@link BusError} `PROTOCOL` when superjson rejects the meta (malformed or hostile).
 */
export function decode(source: Encoded): unknown {
  if (source.q === undefined) return source.p;
  try {
    // superjson's types want a JSONValue; the wire gives unknown. Its own checks guard the meta.
    return superjson.deserialize({ json: source.p as never, meta: source.q as never });
  } catch (cause) {
    throw new BusError('PROTOCOL', 'could not decode a payload', { cause });
  }
}

/**
 * A copy of an encoded payload that shares nothing mutable with `source`: for handing a payload
 * to local subscribers while the same frame waits to be sent to other processes.
 */
export function cloneEncoded(source: Encoded): Encoded {
  if (source.q !== undefined || typeof source.p !== 'object' || source.p === null) return source;
  const out: Encoded = {};
  // Already within the bus's limits when it was encoded: copy it whatever its depth.
  encodeInto(out, source.p, Number.POSITIVE_INFINITY, MAX_MAX_DEPTH);
  return out;
}
