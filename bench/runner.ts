/**
 * Runs a case: rounds of every implementation, each in a fresh cluster, interleaved
 * (raw-json, birpc, birpc+zod, clusterbus, raw-json, ...), and sums the samples up.
 *
 * @module
 */
import type { Case, Metric } from './cases/case.js';
import type { Config } from './config.js';
import { SkipError } from './payload.js';
import { guard, type ImplName, type Session, type StartSession } from './session.js';
import { collectGarbage, type Summary, summarize } from './stats.js';

/** Every sample of one metric of one implementation in one case. */
export interface Series extends Summary {
  readonly variant: string;
  readonly metric: Metric;
  readonly impl: ImplName;
  readonly samples: readonly number[];
}

export interface CaseResult {
  readonly id: string;
  readonly title: string;
  readonly about: string;
  readonly impls: readonly ImplName[];
  readonly rounds: number;
  readonly status: 'ok' | 'failed';
  /** Why the case was aborted (a failed check, a crashed worker, a deadline). */
  readonly error?: string;
  /** Implementations that could not run here, with the reason. */
  readonly skipped: Readonly<Partial<Record<ImplName, string>>>;
  readonly series: readonly Series[];
  /** What the measurements noted (the last round's), for the report. */
  readonly notes?: readonly string[];
}

export async function runCase(
  c: Case,
  config: Config,
  start: Readonly<Record<ImplName, StartSession>>,
  log: (line: string) => void,
): Promise<CaseResult> {
  const rounds = c.rounds?.(config) ?? config.rounds;
  const skipped: Partial<Record<ImplName, string>> = {};
  const samples = new Map<
    string,
    { variant: string; metric: Metric; impl: ImplName; values: number[] }
  >();
  const base = { id: c.id, title: c.title, about: c.about, impls: c.impls, rounds, skipped };
  const counts = typeof c.workers === 'number' ? [c.workers] : c.workers;
  let notes: string[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const impl of c.impls)
      for (const count of counts) {
        if (skipped[impl] !== undefined) continue;
        await collectGarbage();
        const t0 = performance.now();
        let session: Session | undefined;
        try {
          session = await (c.start ?? start[impl])(count);
          const t1 = performance.now();
          const result = await guard(
            session,
            c.measure(session, impl, config),
            config.caseTimeoutMs,
            `case ${c.id}, ${impl}, ${count} workers`,
          );
          const measured = Array.isArray(result) ? result : result.samples;
          if (!Array.isArray(result)) notes = [...result.notes];
          for (const s of measured) {
            const key = `${s.variant}\0${s.metric}\0${impl}`;
            let entry = samples.get(key);
            if (entry === undefined) {
              entry = { variant: s.variant, metric: s.metric, impl, values: [] };
              samples.set(key, entry);
            }
            entry.values.push(s.value);
          }
          const shown = measured.map((s) => `${s.variant} ${s.metric} ${s.value.toFixed(1)}`);
          log(
            `${c.id} round ${round}/${rounds} ${impl}: ${shown.join(', ')} (start ${secs(t1 - t0)}, measure ${secs(performance.now() - t1)})`,
          );
        } catch (error) {
          if (error instanceof SkipError) {
            skipped[impl] = error.message;
            log(`${c.id} ${impl}: skipped: ${error.message}`);
            continue;
          }
          const message = error instanceof Error ? error.message : String(error);
          log(`${c.id} round ${round}/${rounds} ${impl}: FAILED: ${message}`);
          return {
            ...base,
            status: 'failed',
            error: `${impl}, round ${round}: ${message}`,
            series: [],
          };
        } finally {
          await session?.close();
        }
      }
  }
  return { ...base, status: 'ok', series: order(c, [...samples.values()]), notes };
}

/** Series by variant (first seen first), then implementation in the case's order. */
function order(
  c: Case,
  entries: { variant: string; metric: Metric; impl: ImplName; values: number[] }[],
): Series[] {
  const variants = [...new Set(entries.map((e) => e.variant))];
  return entries
    .map((e) => ({
      variant: e.variant,
      metric: e.metric,
      impl: e.impl,
      samples: e.values,
      ...summarize(e.values),
    }))
    .sort(
      (a, b) =>
        variants.indexOf(a.variant) - variants.indexOf(b.variant) ||
        c.impls.indexOf(a.impl) - c.impls.indexOf(b.impl),
    );
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
