/**
 * Both sides: argument checks of the store and lock clients, keys, options, ms, revisions. Each
 * throws {@link BusError} `INVALID_ARGUMENT` with a sentence naming the operation and the argument.
 *
 * @module
 */
import { BusError } from '../errors.js';
import { checkDurationMs } from '../util/duration.js';
import { MAX_KEY_LENGTH } from './protocol.js';

/** @throws `INVALID_ARGUMENT` unless `key` is a string of 1 to 1,024 characters. */
export function checkKey(key: unknown, what: string, label = 'key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `${what}: the ${label} must be a non-empty string of at most ${MAX_KEY_LENGTH} characters, got ${describe(key)}`,
    );
  }
}

/** @throws `INVALID_ARGUMENT` unless `prefix` is a string of at most 1,024 characters ('' too). */
export function checkPrefix(prefix: unknown, what: string): asserts prefix is string {
  if (typeof prefix !== 'string' || prefix.length > MAX_KEY_LENGTH) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `${what}: prefix must be a string of at most ${MAX_KEY_LENGTH} characters, got ${describe(prefix)}`,
    );
  }
}

/** @throws `INVALID_ARGUMENT` unless `options` is an object whose `signal`, if any, is an AbortSignal. */
export function checkOptions(options: unknown, what: string): void {
  if (typeof options !== 'object' || options === null) {
    throw new BusError('INVALID_ARGUMENT', `${what}: options must be an object`);
  }
  const signal = (options as { signal?: unknown }).signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new BusError('INVALID_ARGUMENT', `${what}: options.signal must be an AbortSignal`);
  }
}

/**
 * `value` if it is a finite number of ms > 0, `undefined` if absent; else `INVALID_ARGUMENT`.
 * No upper bound: for store TTLs, whose one expiry timer is re-armed past Node's timer limit
 * (durations a timer serves directly are bounded by it: `checkDurationMs` without `unbounded`).
 */
export function optionalMs(value: unknown, what: string, name: string): number | undefined {
  return value === undefined
    ? undefined
    : checkDurationMs(value, `${what}: ${name}`, { unbounded: true });
}

/** `value` if it is an integer >= 0, `undefined` if absent; else `INVALID_ARGUMENT`. */
export function optionalRevision(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `${what}: ifRevision must be an integer >= 0 (0: the key must not exist), got ${String(value)}`,
    );
  }
  return value;
}

/**
 * A copy of a request without its `undefined` fields, so that it travels as plain JSON (an
 * `undefined` field would send the whole request through superjson).
 */
export function defined(request: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in request) if (request[key] !== undefined) out[key] = request[key];
  return out;
}

function describe(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > 40 ? `a string of ${value.length} characters` : `'${value}'`;
  }
  return String(value);
}
