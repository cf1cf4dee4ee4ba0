/**
 * Measuring loops and summary statistics, shared by the primary and the workers.
 *
 * @module
 */

/** Runs `call` `n` times one after the other; returns each call's latency in µs. */
export async function sequential(
  n: number,
  call: (i: number) => Promise<void>,
): Promise<Float64Array> {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await call(i);
    out[i] = (performance.now() - t0) * 1000;
  }
  return out;
}

/** Runs `call` `n` times with `inflight` calls outstanding at any moment; returns the ms taken. */
export async function pipelined(
  n: number,
  inflight: number,
  call: (i: number) => Promise<void>,
): Promise<number> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) await call(next++);
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(inflight, n) }, lane));
  return performance.now() - t0;
}

/** The `p`th percentile (nearest rank) of `values`. */
export function percentile(values: ArrayLike<number>, p: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Median, min and max of samples. */
export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]! };
}

/** Runs a full garbage collection when `--expose-gc` is on; returns whether it could. */
export async function collectGarbage(): Promise<boolean> {
  if (typeof globalThis.gc !== 'function') return false;
  globalThis.gc();
  await new Promise((resolve) => setImmediate(resolve));
  globalThis.gc();
  return true;
}

/** Lets the event loop turn once (I/O and timers run). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
