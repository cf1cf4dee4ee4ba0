/**
 * The targets of issue 5, as data, and their evaluation against a run's results (ratios of
 * medians from the same run).
 *
 * @module
 */
import type { Metric } from './cases/case.js';
import type { CaseResult } from './runner.js';
import type { ImplName } from './session.js';

interface Where {
  readonly case: string;
  readonly variant: string;
  readonly metric: Metric;
  readonly impl: ImplName;
}

export type Target = Where & {
  readonly text: string;
} & (
    | { readonly ref: ImplName; readonly op: '>=' | '<='; readonly ratio: number }
    | { readonly limit: number }
  );

export const TARGETS: readonly Target[] = [
  {
    text: 'A: p50 latency ≤ 1.15× raw-json',
    case: 'A',
    variant: '64 B',
    metric: 'p50 µs',
    impl: 'clusterbus',
    ref: 'raw-json',
    op: '<=',
    ratio: 1.15,
  },
  {
    text: 'B 64 B: calls/s ≥ 1.5× raw-json',
    case: 'B',
    variant: '64 B',
    metric: 'calls/s',
    impl: 'clusterbus',
    ref: 'raw-json',
    op: '>=',
    ratio: 1.5,
  },
  {
    text: 'C: sequential p50 ≤ 1.2× raw-json relay',
    case: 'C',
    variant: 'sequential',
    metric: 'p50 µs',
    impl: 'clusterbus',
    ref: 'raw-json',
    op: '<=',
    ratio: 1.2,
  },
  {
    text: 'C: pipelined calls/s ≥ 1.3× raw-json relay',
    case: 'C',
    variant: 'pipelined',
    metric: 'calls/s',
    impl: 'clusterbus',
    ref: 'raw-json',
    op: '>=',
    ratio: 1.3,
  },
  {
    text: 'D 1 KiB: calls/s ≥ 1.0× raw-json',
    case: 'D',
    variant: '1 KiB',
    metric: 'calls/s',
    impl: 'clusterbus',
    ref: 'raw-json',
    op: '>=',
    ratio: 1.0,
  },
  {
    text: 'D 64 KiB: calls/s ≥ 0.9× raw-json',
    case: 'D',
    variant: '64 KiB',
    metric: 'calls/s',
    impl: 'clusterbus',
    ref: 'raw-json',
    op: '>=',
    ratio: 0.9,
  },
  {
    text: 'E: events/s ≥ 2× one worker.send per worker',
    case: 'E',
    variant: '4 workers',
    metric: 'events/s',
    impl: 'clusterbus',
    ref: 'raw-json',
    op: '>=',
    ratio: 2,
  },
  {
    text: 'F: store.increment calls/s ≥ 1.5× Redis INCR, counts exact',
    case: 'F',
    variant: '2 workers',
    metric: 'calls/s',
    impl: 'clusterbus',
    ref: 'redis',
    op: '>=',
    ratio: 1.5,
  },
  {
    text: 'Memory: primary RSS grows ≤ 50 MB',
    case: 'M',
    variant: 'primary',
    metric: 'ΔRSS MB',
    impl: 'clusterbus',
    limit: 50,
  },
  {
    text: 'Memory: worker RSS grows ≤ 50 MB',
    case: 'M',
    variant: 'worker',
    metric: 'ΔRSS MB',
    impl: 'clusterbus',
    limit: 50,
  },
];

export interface TargetResult {
  /** The case it is about. */
  readonly case: string;
  readonly text: string;
  /** The ratio of medians, or the median for a limit. */
  readonly value: number | undefined;
  readonly measured: string;
  readonly status: 'met' | 'not met' | 'n/a';
}

function median(cases: readonly CaseResult[], w: Where): number | undefined {
  const c = cases.find((x) => x.id === w.case);
  return c?.series.find(
    (s) => s.variant === w.variant && s.metric === w.metric && s.impl === w.impl,
  )?.median;
}

/** Evaluates every target; those of cases that did not run (or failed) are `n/a`. */
export function evaluate(cases: readonly CaseResult[]): TargetResult[] {
  return TARGETS.map((t) => {
    const mine = median(cases, t);
    if ('limit' in t) {
      if (mine === undefined)
        return {
          case: t.case,
          text: t.text,
          value: undefined,
          measured: 'not measured',
          status: 'n/a',
        };
      return {
        case: t.case,
        text: t.text,
        value: mine,
        measured: `${mine.toFixed(1)} MB`,
        status: mine <= t.limit ? 'met' : 'not met',
      };
    }
    const ref = median(cases, { ...t, impl: t.ref });
    if (mine === undefined || ref === undefined) {
      return {
        case: t.case,
        text: t.text,
        value: undefined,
        measured: 'not measured',
        status: 'n/a',
      };
    }
    const ratio = mine / ref;
    const met = t.op === '>=' ? ratio >= t.ratio : ratio <= t.ratio;
    return {
      case: t.case,
      text: t.text,
      value: ratio,
      measured: `${ratio.toFixed(2)}×`,
      status: met ? 'met' : 'not met',
    };
  });
}
