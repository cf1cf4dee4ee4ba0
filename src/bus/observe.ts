/**
 * The bus's own counters: calls issued (by method and code, with their durations), calls served,
 * events published, and (in the primary) store operations. Plain numbers and one fixed bucket
 * array per method, updated with a few arithmetic operations on the hot path: no metrics library
 * here. The metrics extension (src/metrics/) reads a {@link BusSnapshot} when it is scraped.
 *
 * Label values are bounded: a method, topic or store name outside the contract is counted under
 * {@link OTHER_LABEL}.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import { LatencyHistogram } from '../util/latency-histogram.js';

/**
 * The upper bounds of the call-duration histogram's buckets, in seconds (`+Inf` is implicit):
 * from half a millisecond (a call within one machine) to 30 s (the default call timeout).
 */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/**
 * The label value of every method, topic or store not in the contract: it starts with `$`,
 * which no contract name can.
 */
export const OTHER_LABEL = '$other';

/** The `store` label value of lock operations (`acquire`, `release`, `extend`). */
export const LOCK_LABEL = '$lock';

/** The code label of a call that resolved. */
export const OK_CODE = 'OK';

/** One method's call durations: counts per bucket (not cumulative; the last is `+Inf`). */
export interface DurationSnapshot {
  /** Observations per bucket of {@link DURATION_BUCKETS_SECONDS}, then over the last bound. */
  readonly buckets: number[];
  /** The sum of the durations, in seconds. */
  readonly sum: number;
  /** How many were observed. */
  readonly count: number;
}

/** What one bus has counted since it was made. Plain JSON: it crosses the IPC channel. */
export interface BusSnapshot {
  /** Calls issued and settled, by method, then by code (`OK` or a BusError code). */
  readonly calls: Record<string, Record<string, number>>;
  /** Durations of the calls issued, by method (from issue to settlement). */
  readonly durations: Record<string, DurationSnapshot>;
  /** Requests this process served (answered), by method, then by code. */
  readonly served: Record<string, Record<string, number>>;
  /** Calls issued and not settled yet. */
  readonly inFlight: number;
  /** Events published by this process, by topic. */
  readonly published: Record<string, number>;
  /** Store operations received by the store host (the primary only), by store, then by op. */
  readonly storeOps: Record<string, Record<string, number>>;
}

class Durations {
  readonly buckets = new Array<number>(DURATION_BUCKETS_SECONDS.length + 1).fill(0);
  sum = 0;
  count = 0;
}

/** The counters of one bus. Made by the bus; cheap enough to be always on. */
export class BusObserver {
  /** Calls issued and not settled yet. */
  inFlight = 0;
  /** How long this process took to serve requests (receipt to answer), since the last health report. */
  readonly serveTimes = new LatencyHistogram();
  private readonly methods: ReadonlySet<string>;
  private readonly topics: ReadonlySet<string>;
  private readonly stores: ReadonlySet<string>;
  private readonly calls = new Map<string, Map<string, number>>();
  private readonly durations = new Map<string, Durations>();
  private readonly served = new Map<string, Map<string, number>>();
  private readonly published = new Map<string, number>();
  private readonly storeOps = new Map<string, Map<string, number>>();

  constructor(contract: Contract) {
    this.methods = new Set(contract.methods.keys());
    this.topics = new Set(contract.events.keys());
    this.stores = new Set(contract.stores.keys());
  }

  /** A call is issued: returns its start time (ms, `performance.now()`), for {@link settled}. */
  started(): number {
    this.inFlight++;
    return performance.now();
  }

  /** A call issued at `startMs` (from {@link started}) settled with `code`. */
  settled(method: string, code: string, startMs: number): void {
    this.inFlight--;
    this.record(method, code, startMs);
  }

  /**
   * A `callAll` issued at `startMs` settled: one call per worker, each with its own code and
   * the gather's duration.
   */
  settledAll(
    method: string,
    results: readonly { readonly status: string; readonly error?: { readonly code: string } }[],
    startMs: number,
  ): void {
    this.inFlight--;
    for (const r of results) this.record(method, r.error?.code ?? OK_CODE, startMs);
  }

  private record(method: string, code: string, startMs: number): void {
    const name = this.methods.has(method) ? method : OTHER_LABEL;
    bump(this.calls, name, code);
    let d = this.durations.get(name);
    if (d === undefined) {
      d = new Durations();
      this.durations.set(name, d);
    }
    const seconds = (performance.now() - startMs) / 1000;
    let i = 0;
    const bounds = DURATION_BUCKETS_SECONDS;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    d.buckets[i]!++;
    d.sum += seconds;
    d.count++;
  }

  /**
   * This process answered a request for `method` with `code` (`OK` or a BusError code), received
   * at `startMs` (`performance.now()`).
   */
  answered(method: string, code: string, startMs: number): void {
    if (method.charCodeAt(0) === 36) return; // '$': a system protocol's, not the app's
    this.serveTimes.record(performance.now() - startMs);
    bump(this.served, this.methods.has(method) ? method : OTHER_LABEL, code);
  }

  /** This process published an event on `topic`. */
  publishedOn(topic: string): void {
    const name = this.topics.has(topic) ? topic : OTHER_LABEL;
    this.published.set(name, (this.published.get(name) ?? 0) + 1);
  }

  /** The store host received operation `op` on `store` (`undefined` for a lock operation). */
  storeOp(store: unknown, op: string): void {
    const name =
      store === undefined
        ? LOCK_LABEL
        : typeof store === 'string' && this.stores.has(store)
          ? store
          : OTHER_LABEL;
    bump(this.storeOps, name, op);
  }

  /** A copy of every counter, as plain JSON. */
  snapshot(): BusSnapshot {
    const durations: Record<string, DurationSnapshot> = {};
    for (const [m, d] of this.durations) {
      durations[m] = { buckets: [...d.buckets], sum: d.sum, count: d.count };
    }
    const published: Record<string, number> = {};
    for (const [t, n] of this.published) published[t] = n;
    return {
      calls: nested(this.calls),
      durations,
      served: nested(this.served),
      inFlight: this.inFlight,
      published,
      storeOps: nested(this.storeOps),
    };
  }
}

function bump(table: Map<string, Map<string, number>>, a: string, b: string): void {
  let inner = table.get(a);
  if (inner === undefined) {
    inner = new Map();
    table.set(a, inner);
  }
  inner.set(b, (inner.get(b) ?? 0) + 1);
}

function nested(table: Map<string, Map<string, number>>): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [a, inner] of table) {
    const row: Record<string, number> = {};
    for (const [b, n] of inner) row[b] = n;
    out[a] = row;
  }
  return out;
}
