/**
 * An interval histogram of durations in ms: fixed log-scaled buckets (8 per doubling, so a
 * percentile is within 9% of the truth), recorded with a few arithmetic operations, read and
 * reset at once by {@link LatencyHistogram.take}. Used for the time a worker takes to serve
 * requests, reported with each health report.
 *
 * @module
 */

/** The smallest bucket's upper bound, in ms (2^-7 ms, about 8 µs). */
const MIN_MS = 1 / 128;
/** Buckets per doubling. */
const PER_OCTAVE = 8;
/** Up to 2^17 ms (about 131 s) in 24 doublings; longer ones go to the last bucket (its max). */
const BUCKETS = 24 * PER_OCTAVE + 2;

/** Percentiles of the durations recorded over one interval, in ms. */
export interface LatencySummary {
  /** The median, in ms. */
  readonly p50: number;
  /** The 99th percentile, in ms. */
  readonly p99: number;
  /** The longest, in ms. */
  readonly max: number;
  /** How many durations were recorded. */
  readonly count: number;
}

/** @internal Durations recorded since the last {@link take}. */
export class LatencyHistogram {
  private readonly buckets = new Array<number>(BUCKETS).fill(0);
  private count = 0;
  private max = 0;

  /** Records one duration, in ms (negative or NaN counts as 0). */
  record(ms: number): void {
    const i =
      ms > MIN_MS ? Math.min(BUCKETS - 1, Math.ceil(Math.log2(ms / MIN_MS) * PER_OCTAVE)) : 0;
    this.buckets[i]!++;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  /**
   * The percentiles of what was recorded since the previous call, rounded to the µs, then
   * forgets it all; `null` when nothing was recorded. A percentile is its bucket's upper bound,
   * capped at the longest duration seen.
   */
  take(): LatencySummary | null {
    const count = this.count;
    if (count === 0) return null;
    const max = this.max;
    const at = (q: number) => {
      const rank = Math.ceil(q * count);
      let seen = 0;
      for (let i = 0; i < BUCKETS; i++) {
        seen += this.buckets[i]!;
        if (seen >= rank) {
          return i === BUCKETS - 1 ? max : Math.min(max, MIN_MS * 2 ** (i / PER_OCTAVE));
        }
      }
      return max;
    };
    const summary = { p50: micro(at(0.5)), p99: micro(at(0.99)), max: micro(max), count };
    this.buckets.fill(0);
    this.count = 0;
    this.max = 0;
    return summary;
  }
}

function micro(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
