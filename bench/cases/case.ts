/**
 * What a case is: how many workers, which implementations, and a measurement over one fresh
 * cluster that returns samples.
 *
 * @module
 */
import type { Config } from '../config.js';
import { checkEcho } from '../payload.js';
import type { ImplName, Session } from '../session.js';

/** A metric and which way is better. */
export const METRICS = {
  'p50 µs': 'lower',
  'p99 µs': 'lower',
  'calls/s': 'higher',
  'events/s': 'higher',
  'RSS before MB': 'lower',
  'RSS after MB': 'lower',
  'ΔRSS MB': 'lower',
} as const;
export type Metric = keyof typeof METRICS;

/** One number measured in one cluster. */
export interface Sample {
  /** A sub-case: a payload size, `sequential`, `primary`, ... */
  readonly variant: string;
  readonly metric: Metric;
  readonly value: number;
}

export interface Case {
  /** `A`..`F`, `M` for memory. */
  readonly id: string;
  readonly title: string;
  /** How it is measured, one or two sentences for the report. */
  readonly about: string;
  readonly workers: number;
  readonly impls: readonly ImplName[];
  /** Rounds to run; default: the config's. */
  rounds?(config: Config): number;
  /** Measures one implementation in a fresh cluster (warm-up included). */
  measure(session: Session, impl: ImplName, config: Config): Promise<Sample[]>;
}

/** The four implementations of the RPC cases, in round order. */
export const RPC_IMPLS: readonly ImplName[] = ['raw-json', 'birpc', 'birpc+zod', 'clusterbus'];

/** A primary -> worker echo whose reply is checked (id and length). */
export function checkedEcho(
  session: Session,
  worker: number,
  s: string,
): (id: number) => Promise<void> {
  return async (id) => {
    const sent = { id, s };
    checkEcho(sent, await session.echo(worker, sent));
  };
}
