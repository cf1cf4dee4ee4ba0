/**
 * How the bus tells names and processes apart in what it checks and says: system names (`$…`),
 * origins (who sent a message) and targets (where a call goes).
 *
 * @module
 */
import type { Origin, Target } from '../core/types.js';
import { BusError } from '../errors.js';

/** @internal Whether a method or topic name is a system one (`$…`). */
export function isSystemName(name: string): boolean {
  return name.charCodeAt(0) === 36; // '$'
}

/** Describes an origin for messages: `the primary` or `worker 3`. */
export function describeOrigin(origin: Origin): string {
  return origin === 'primary' ? 'the primary' : `worker ${origin}`;
}

/** Describes a target for messages: `the primary`, `worker 3`, `any worker`, a slot's worker. */
export function describeTarget(target: Target): string {
  if (typeof target === 'object') {
    return 'node' in target
      ? `worker ${target.worker} on node '${target.node}'`
      : `the worker in slot ${target.slot}`;
  }
  return typeof target === 'number'
    ? `worker ${target}`
    : target === 'any'
      ? 'any worker'
      : 'the primary';
}

/**
 * Checks a call's target: `'primary'`, `'any'`, a worker id or `{ slot }`.
 * @throws a `BusError` `INVALID_ARGUMENT` for anything else.
 */
export function checkTarget(target: unknown): void {
  if (target === 'primary' || target === 'any') return;
  if (typeof target === 'number' && Number.isSafeInteger(target) && target > 0) return;
  if (typeof target === 'object' && target !== null && 'node' in target) {
    const { node, worker } = target as { node?: unknown; worker?: unknown };
    if (
      typeof node === 'string' &&
      node.length > 0 &&
      Number.isSafeInteger(worker) &&
      (worker as number) > 0
    )
      return;
  } else if (typeof target === 'object' && target !== null) {
    const slot = (target as { slot?: unknown }).slot;
    if (Number.isSafeInteger(slot) && (slot as number) >= 0) return;
  }
  throw new BusError(
    'INVALID_ARGUMENT',
    `call: target must be 'primary', 'any', a worker id (a positive integer) { slot } (an integer >= 0) or { node, worker } (a name and a positive integer), got ${JSON.stringify(target) ?? String(target)}`,
  );
}
