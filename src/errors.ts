/**
 * One error class for everything the bus rejects with, its wire form, and the one function that
 * turns anything thrown into it.
 *
 * The module every other file imports errors from: the class, its codes and wire form live in
 * `errors/bus-error.ts`, the normalization of anything thrown in `errors/normalize.ts`.
 *
 * @module
 */
export {
  BUS_ERROR_CODES,
  BusError,
  type BusErrorCode,
  type BusErrorJSON,
  type BusErrorOptions,
  type BusIssue,
  isBusErrorJSON,
  RemoteError,
  type RemoteErrorJSON,
} from './errors/bus-error.js';
export { summarizeIssues, toBusError, toIssues, toRemoteError } from './errors/normalize.js';
