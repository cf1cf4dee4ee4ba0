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
/** The JSON length of what {@link plainCopy} or {@link measure} last walked (approximate). */
let walked = 0;
/** Deeper than this, a value is left to superjson. */
const MAX_DEPTH = 64;

/**
 * Copies a plain-JSON value (containers copied, strings shared); returns NOT_PLAIN at the first
 * value JSON would not carry exactly.
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
      if (depth >= MAX_DEPTH) return NOT_PLAIN;
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
      if (Object.getOwnPropertySymbols(value).length > 0) return NOT_PLAIN;
      return out;
    }
    default:
      return NOT_PLAIN; // undefined, bigint, symbol, function
  }
}

/** Adds the approximate JSON length of a JSON value to `walked`. */
function measure(value: unknown, depth: number): void {
  if (typeof value === 'string') walked += value.length + 2;
  else if (typeof value !== 'object' || value === null) walked += 8;
  else if (depth > 256) walked += 64;
  else if (Array.isArray(value)) {
    walked += value.length + 2;
    for (const v of value) measure(v, depth + 1);
  } else {
    for (const key in value) {
      walked += key.length + 4;
      measure((value as Record<string, unknown>)[key], depth + 1);
    }
  }
}

/**
 * Encodes `value` into the envelope's `p`/`q` fields of `target`. `undefined` leaves both absent.
 *
 * @param maxBytes - refuse a payload whose JSON text would be longer than this (approximately:
 *   counted in string length, as the channel writes it).
 * @throws {@link BusError} `PAYLOAD_TOO_LARGE` over `maxBytes`; whatever superjson throws for a
 *   value it cannot serialize.
 */
export function encodeInto(
  target: Encoded,
  value: unknown,
  maxBytes = Number.POSITIVE_INFINITY,
): void {
  if (value === undefined) return;
  walked = 0;
  const copy = plainCopy(value, 0);
  if (copy !== NOT_PLAIN) {
    if (walked > maxBytes) throw tooLarge(walked, maxBytes);
    target.p = copy;
    return;
  }
  const { json, meta } = superjson.serialize(value);
  if (maxBytes !== Number.POSITIVE_INFINITY) {
    walked = 0;
    measure(json, 0);
    measure(meta, 0);
    if (walked > maxBytes) throw tooLarge(walked, maxBytes);
  }
  target.p = json;
  if (meta !== undefined) target.q = meta;
}

function tooLarge(size: number, maxBytes: number): BusError {
  return new BusError(
    'PAYLOAD_TOO_LARGE',
    `the payload is about ${size} bytes as JSON, over maxPayloadBytes (${maxBytes})`,
  );
}

/** Encodes a value as a fresh {@link Encoded}. See {@link encodeInto}. */
export function encode(value: unknown, maxBytes?: number): Encoded {
  const out: Encoded = {};
  encodeInto(out, value, maxBytes);
  return out;
}

/**
 * A cheap estimate of an encoded payload's JSON size in bytes, for batching bounds only: strings
 * by length, arrays as length times their first element, three levels deep at most.
 */
export function encodedSize(source: Encoded): number {
  return (
    16 + (source.p === undefined ? 0 : quickSize(source.p, 0)) + (source.q === undefined ? 0 : 64)
  );
}

function quickSize(value: unknown, depth: number): number {
  if (typeof value === 'string') return value.length + 2;
  if (typeof value !== 'object' || value === null) return 8;
  if (depth >= 3) return 64;
  if (Array.isArray(value)) {
    return value.length === 0 ? 2 : value.length * (quickSize(value[0], depth + 1) + 1);
  }
  let n = 2;
  for (const key in value)
    n += key.length + 4 + quickSize((value as Record<string, unknown>)[key], depth + 1);
  return n;
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
  encodeInto(out, source.p);
  return out;
}
