/**
 * The hub side: the store host's configuration, what {@link StoreHost.load} takes (its options,
 * persistence, the bus's limits, where to report), its defaults, and the check of it.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import { BusError } from '../errors.js';
import { checkCount } from '../util/count.js';
import { checkDurationMs } from '../util/duration.js';
import type { PersistOptions, StoreHostOptions } from './types.js';

/** Default `maxEntries` of a store. */
export const DEFAULT_MAX_ENTRIES = 10_000;
/** Default `persist.intervalMs`, in ms. */
export const DEFAULT_PERSIST_INTERVAL_MS = 1_000;
/** The bus's default `maxPayloadBytes` (8 MiB), for a host not told the bus's own. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

/** What {@link StoreHost.load} takes: the host's options, persistence, and where to report. */
export interface StoreHostConfig<C extends Contract = Contract> extends StoreHostOptions<C> {
  /** Snapshot persistence; absent: the stores live in memory only. */
  readonly persist?: PersistOptions;
  /**
   * The bus's `maxDepth`, in levels of arrays and objects: a value deeper than the bus could send
   * back to a reader is refused when written (`PAYLOAD_TOO_DEEP`).
   * @default 128
   */
  readonly maxDepth?: number;
  /**
   * The bus's `maxPayloadBytes`, in bytes: a value larger than the bus could send back to a
   * reader is refused when written (`PAYLOAD_TOO_LARGE`).
   * @default 8_388_608 (8 MiB)
   */
  readonly maxPayloadBytes?: number;
  /**
   * Told of problems with no caller to reject (a snapshot that could not be written), and of
   * refusals a hostile process should not keep to itself (`FORBIDDEN`).
   * @default the bus's reports (its `error` event, aggregated; `process.emitWarning` when nobody
   *   listens to it)
   */
  readonly report?: (error: BusError) => void;
  /**
   * Told of every store or lock operation received, before it runs: the request's store name
   * (`undefined` for a lock operation) and its verb (`get`, `set`, `acquire`, ...). The metrics'
   * store counters.
   */
  readonly observe?: (store: unknown, op: string) => void;
}

/** Checks the host's options; returns the per-store `maxEntries`. */
export function checkConfig(
  contract: Contract,
  config: StoreHostConfig,
): ReadonlyMap<string, number> {
  const limits = new Map<string, number>();
  if (config.maxEntries !== undefined) checkCount(config.maxEntries, 'store.maxEntries');
  if (config.maxWatchesPerProcess !== undefined) {
    checkCount(config.maxWatchesPerProcess, 'store.maxWatchesPerProcess');
  }
  for (const [name, limit] of Object.entries(config.limits ?? {})) {
    if (!contract.stores.has(name)) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `store.limits: '${name}' is not a store of the contract`,
      );
    }
    const max = (limit as { maxEntries?: unknown } | undefined)?.maxEntries;
    if (max !== undefined) limits.set(name, checkCount(max, `store.limits.${name}.maxEntries`));
  }
  const persist = config.persist;
  if (persist !== undefined) {
    if (typeof persist.file !== 'string' || persist.file.length === 0) {
      throw new BusError('INVALID_ARGUMENT', 'persist.file must be a non-empty path');
    }
    if (persist.intervalMs !== undefined) {
      checkDurationMs(persist.intervalMs, 'persist.intervalMs');
    }
  }
  return limits;
}
