/**
 * The object-shaped payload the RPC cases move: `{ seq, id, name, score, items: [{ k, v, s }, …] }`,
 * the shape an API moves, sized by its JSON (64 B, 1 KiB, 64 KiB). No zod here (see schemas.ts).
 *
 * @module
 */

/** One item of an object payload. */
export interface Item {
  k: string;
  v: number;
  s: string;
}

/** The object payload. `seq` is the call's number, checked in the reply. */
export interface ObjectPayload {
  seq: number;
  id: string;
  name: string;
  score: number;
  items: Item[];
}

/** The JSON length of a value, as the channel writes it. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

/**
 * A template whose JSON (with a 6-digit `seq`) is about `bytes` long: items are added until the
 * next one would pass it. Every call sends `{ ...template, seq }` (a fresh top-level object; the
 * items are shared, as an API's cached rows would be).
 */
export function objectTemplate(bytes: number): ObjectPayload {
  const base: ObjectPayload = { seq: 123456, id: 'u-1f3a', name: 'a user', score: 0.75, items: [] };
  let size = jsonBytes(base);
  for (let i = 0; ; i++) {
    const item: Item = { k: `key${i}`, v: (i * 37) % 1000, s: 'abcdefgh' };
    const more = jsonBytes(item) + (i === 0 ? 0 : 1);
    if (size + more > bytes) break;
    base.items.push(item);
    size += more;
  }
  // Pad the name to land on the size (a 64 B payload has no item).
  const pad = bytes - jsonBytes(base);
  if (pad > 0) base.name += 'x'.repeat(pad);
  return base;
}
