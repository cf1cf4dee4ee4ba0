/**
 * How much each case does, in full and `--quick` mode. Full mode is sized for a few minutes on a
 * 2-core machine; quick mode for under a minute (fewer rounds and calls, same shape).
 *
 * @module
 */

export interface Config {
  readonly mode: 'full' | 'quick';
  /** Rounds of every case except memory: each round forks a fresh cluster per implementation. */
  readonly rounds: number;
  /** A: sequential calls. */
  readonly latency: { readonly warmup: number; readonly calls: number };
  /** B and D: pipelined calls per payload size (bytes -> calls); warm-up is a tenth. */
  readonly pipelined: Readonly<Record<number, number>>;
  /** C: worker -> worker through the primary. */
  readonly relay: {
    readonly seqWarmup: number;
    readonly seqCalls: number;
    readonly pipeWarmup: number;
    readonly pipeCalls: number;
  };
  /** E: events published to the 4 workers. */
  readonly broadcast: { readonly warmup: number; readonly events: number };
  /** F: increments per worker. */
  readonly counter: { readonly warmup: number; readonly calls: number };
  /** Memory: pipelined calls before the first sample, and between the samples. */
  readonly memory: { readonly warmup: number; readonly calls: number };
  /** A case whose measurement takes longer than this in one cluster is aborted. */
  readonly caseTimeoutMs: number;
}

/** Calls in flight in every pipelined measurement (B, C, D, memory). */
export const INFLIGHT = 256;
/** Increments in flight per worker in case F. */
export const COUNTER_INFLIGHT = 64;
/** Workers receiving the broadcast of case E. */
export const BROADCAST_WORKERS = 4;
/** E: events published between two turns of the primary's event loop. */
export const BROADCAST_BURST = 256;
/** B and D payload sizes, in bytes of JSON. */
export const PAYLOAD_SIZES = [64, 1024, 65536] as const;

export const FULL: Config = {
  mode: 'full',
  rounds: 5,
  latency: { warmup: 2_000, calls: 10_000 },
  pipelined: { 64: 100_000, 1024: 60_000, 65536: 4_000 },
  relay: { seqWarmup: 1_000, seqCalls: 5_000, pipeWarmup: 5_000, pipeCalls: 50_000 },
  broadcast: { warmup: 5_000, events: 50_000 },
  counter: { warmup: 2_000, calls: 25_000 },
  memory: { warmup: 50_000, calls: 1_000_000 },
  caseTimeoutMs: 120_000,
};

/**
 * One round: forking a fresh cluster per implementation per case (about 40 workers per round,
 * each loading tsx) is most of a round's time, and two rounds take over a minute on a busy
 * 2-core machine. `--quick --rounds 2` gives a spread when there is time.
 */
export const QUICK: Config = {
  mode: 'quick',
  rounds: 1,
  latency: { warmup: 500, calls: 2_000 },
  pipelined: { 64: 20_000, 1024: 12_000, 65536: 800 },
  relay: { seqWarmup: 300, seqCalls: 1_500, pipeWarmup: 1_000, pipeCalls: 10_000 },
  broadcast: { warmup: 1_000, events: 10_000 },
  counter: { warmup: 500, calls: 5_000 },
  memory: { warmup: 20_000, calls: 100_000 },
  caseTimeoutMs: 60_000,
};
