/**
 * Counts: the one check of an integer option (`workers`, `misses`, `maxEntries`, ...).
 *
 * @module
 */
import { BusError } from '../errors.js';
import { describeValue } from './describe.js';

/**
 * Checks a count option: a safe integer from `min` to `max`.
 *
 * @param what - the operation and option, for the message (e.g. `startCluster: workers`).
 * @returns `value`.
 * @throws {@link BusError} `INVALID_ARGUMENT` otherwise (`1.5`, NaN, a string, out of range),
 *   e.g. `startCluster: workers must be an integer >= 1, got the string "2"`.
 */
export function checkCount(
  value: unknown,
  what: string,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new BusError(
      'INVALID_ARGUMENT',
      `${what} must be an integer ${range}, got ${describeValue(value)}`,
    );
  }
  return value as number;
}
