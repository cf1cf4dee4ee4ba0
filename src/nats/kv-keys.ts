/**
 * Store names and keys as KV bucket names and keys: themselves when KV takes them, else encoded
 * (so any store key of up to 1,024 characters can be kept).
 *
 * @module
 */

/** A KV name for a store or a key: itself when KV takes it, else `=` and its base64url. */
export function kvToken(name: string, key: boolean): string {
  const plain = key ? /^[-/_a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$/ : /^[-_a-zA-Z0-9]+$/;
  if (plain.test(name) && !name.startsWith('=')) return name;
  const b64 = Buffer.from(name).toString('base64url');
  return key ? `=${b64}` : `x${Buffer.from(name).toString('hex')}`;
}

/** The store key of a KV key (the inverse of {@link kvToken} for keys). */
export function fromKvKey(key: string): string {
  return key.startsWith('=') ? Buffer.from(key.slice(1), 'base64url').toString() : key;
}
