/**
 * Reading a property of a value that may be hostile.
 *
 * @module
 */

/**
 * @internal `value[key]`, or `undefined` when `value` is not an object or function, or when
 * reading throws (a getter, a Proxy trap). Never throws.
 */
export function readProperty(value: unknown, key: string): unknown {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null)
    return undefined;
  try {
    return (value as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}
