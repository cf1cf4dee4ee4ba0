/**
 * Payload encoding: superjson, so `Date`, `Map`, `Set`, `BigInt`, `RegExp` and `undefined` inside
 * objects arrive as they left. The result is JSON-safe and rides inside the envelope as it is
 * (Node's IPC channel serializes the whole frame once, as JSON).
 *
 * @module
 */
import superjson from 'superjson';
import { BusError } from '../errors.js';
import type { Encoded } from './envelope.js';

/** Encodes a value into the envelope's `p`/`q` fields of `target`. */
export function encodeInto(target: Encoded, value: unknown): void {
  if (value === undefined) return;
  const { json, meta } = superjson.serialize(value);
  target.p = json;
  if (meta !== undefined) target.q = meta;
}

/** Encodes a value as a fresh {@link Encoded}. */
export function encode(value: unknown): Encoded {
  const out: Encoded = {};
  encodeInto(out, value);
  return out;
}

/**
 * Decodes the `p`/`q` fields back into a value. A frame with neither is `undefined`.
 *
 * @throws {@link BusError} `PROTOCOL` when superjson rejects the meta (malformed or hostile).
 */
export function decode(source: Encoded): unknown {
  if (source.p === undefined && source.q === undefined) return undefined;
  try {
    // superjson's types want a JSONValue; the wire gives unknown. Its own checks guard the meta.
    return superjson.deserialize({ json: source.p as never, meta: source.q as never });
  } catch (cause) {
    throw new BusError('PROTOCOL', 'could not decode a payload', { cause });
  }
}
