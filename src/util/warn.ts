/**
 * The last stop of every report that has nobody to reject: an emitter's `error` event when
 * somebody listens, else a process warning (`BusWarning`, with the error's code), so nothing is
 * dropped silently and nothing throws.
 *
 * @module
 */
import type { BusError } from '../errors.js';

/** What can take a report: an emitter with an `error` event. */
export interface ErrorEmitter {
  listenerCount(event: 'error'): number;
  emit(event: 'error', error: BusError): unknown;
}

/** Prints `error` as a process warning of type `BusWarning`, with its code. */
export function warn(error: BusError, message: string = error.message): void {
  process.emitWarning(message, { type: 'BusWarning', code: error.code });
}

/** Emits `error` on `emitter`'s `error` event if anybody listens there; else {@link warn}s. */
export function emitOrWarn(emitter: ErrorEmitter, error: BusError): void {
  if (emitter.listenerCount('error') > 0) emitter.emit('error', error);
  else warn(error);
}
