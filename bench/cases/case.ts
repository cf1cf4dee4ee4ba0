/**
 * What a case is: how many workers, which implementations, and a measurement over one fresh
 * cluster that returns samples.
 *
 * @module
 */
import type { Config } from '../config.js';
import { checkEcho, echoMaker } from '../payload.js';
import type { ImplName, Session } from '../session.js';

/** A metric and which way is better. */
export const METRICS = {
  'p50 µs': 'lower',
  'p99 µs': 'lower',
  'calls/s': 'higher',
  'events/s': 'higher',
  'req/s': 'higher',
  'primary CPU µs/call': 'lower',
  'worker CPU µs/call': 'lower',
  'primary CPU %': 'lower',
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

/** What a measurement returns: samples, and maybe notes for the report (the last round's are kept). */
export type Measured = Sample[] | { readonly samples: Sample[]; readonly notes: string[] };

export interface Case {
  /** `A`..`H`, `M` for memory. */
  readonly id: string;
  readonly title: string;
  /** How it is measured, one or two sentences for the report. */
  readonly about: string;
  /** Workers of the cluster; several: one fresh cluster of each size per implementation and round. */
  readonly workers: number | readonly number[];
  readonly impls: readonly ImplName[];
  /** Rounds to run; default: the config's. */
  rounds?(config: Config): number;
  /** Starts the cluster itself instead of the implementation's session (case H). */
  readonly start?: ((workers: number) => Promise<Session>) | undefined;
  /** Measures one implementation in a fresh cluster (warm-up included). */
  measure(session: Session, impl: ImplName, config: Config): Promise<Measured>;
}

/** The implementations of the RPC cases, in round order. */
export const RPC_IMPLS: readonly ImplName[] = ['raw-json', 'birpc', 'birpc+zod', 'clusterbus'];
/** As {@link RPC_IMPLS}, with the batched raw ceiling (pipelined cases). */
export const PIPELINED_IMPLS: readonly ImplName[] = [
  'raw-json',
  'raw-batched',
  'birpc',
  'birpc+zod',
  'clusterbus',
];

/** A primary -> worker echo (object payloads of about `bytes`) whose reply is checked. */
export function checkedEcho(
  session: Session,
  worker: number,
  bytes: number,
  shape: 'object' | 'string' = 'object',
): (i: number) => Promise<void> {
  const make = echoMaker(bytes, shape);
  return async (i) => {
    const sent = make(i);
    checkEcho(sent, await session.echo(worker, sent));
  };
}
