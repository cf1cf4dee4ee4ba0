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
  /** A: sequential calls (the figure is after 500 warm-up calls). */
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
  /** E: fan-out to 8 and 16 workers: events published, and sequential callAll calls. */
  readonly fanout: {
    readonly rounds: number;
    readonly warmup: number;
    readonly events: number;
    readonly callWarmup: number;
    readonly calls: number;
  };
  /** H: seconds of HTTP load per cluster, and autocannon's connections. */
  readonly http: { readonly seconds: number; readonly connections: number };
  /** F: increments per worker. */
  readonly counter: { readonly warmup: number; readonly calls: number };
  /** Memory: pipelined calls (1 KiB object payloads) before the first sample, and between the samples. */
  readonly memory: { readonly warmup: number; readonly calls: number };
  /** A case whose measurement takes longer than this in one cluster is aborted. */
  readonly caseTimeoutMs: number;
}

/** Calls in flight in every pipelined measurement (B, C, D, memory). */
export const INFLIGHT = 256;
/** Increments in flight per worker in case F. */
export const COUNTER_INFLIGHT = 64;
/** Workers of the fan-out case E: one cluster of each size. */
export const FANOUT_WORKERS = [8, 16] as const;
/** E: events published between two turns of the primary's event loop. */
export const BROADCAST_BURST = 256;
/** B and D payload sizes, in bytes of JSON. */
export const PAYLOAD_SIZES = [64, 1024, 65536] as const;
/** Case M: the payload of the million calls, in bytes of JSON. */
export const MEMORY_PAYLOAD = 1024;

export const FULL: Config = {
  mode: 'full',
  // Sized for a 2-core machine shared with other work (a full run takes 15-30 min there).
  rounds: 3,
  latency: { warmup: 500, calls: 10_000 },
  pipelined: { 64: 60_000, 1024: 20_000, 65536: 600 },
  relay: { seqWarmup: 1_000, seqCalls: 5_000, pipeWarmup: 2_000, pipeCalls: 20_000 },
  fanout: { rounds: 2, warmup: 2_000, events: 30_000, callWarmup: 500, calls: 2_000 },
  http: { seconds: 8, connections: 8 },
  counter: { warmup: 2_000, calls: 25_000 },
  memory: { warmup: 50_000, calls: 1_000_000 },
  caseTimeoutMs: 180_000,
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
  pipelined: { 64: 20_000, 1024: 8_000, 65536: 300 },
  relay: { seqWarmup: 300, seqCalls: 1_500, pipeWarmup: 1_000, pipeCalls: 10_000 },
  fanout: { rounds: 1, warmup: 1_000, events: 5_000, callWarmup: 200, calls: 500 },
  http: { seconds: 3, connections: 8 },
  counter: { warmup: 500, calls: 5_000 },
  memory: { warmup: 20_000, calls: 100_000 },
  caseTimeoutMs: 90_000,
};
