/**
 * The targets (issue 15's, and issue 5's for C), as data, and their evaluation against a run's results (ratios of
 * medians from the same run).
 *
 * @module
 */
import os from 'node:os';
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
    | {
        readonly ref: ImplName;
        /** The reference's variant, when it is another one of the same case (H). */
        readonly refVariant?: string;
        readonly op: '>=' | '<=';
        readonly ratio: number;
        /** Reported, not judged (H: the ceiling depends on the machine). */
        readonly info?: true;
      }
    | { readonly limit: number }
  );

const CB = 'clusterbus' as const;

/** The targets of issue 15 (and those of issue 5 it keeps: C). */
export const TARGETS: readonly Target[] = [
  {
    text: 'A: p50 latency ≤ 1.15× raw-json (after 500 warm-up calls)',
    case: 'A',
    variant: '64 B',
    metric: 'p50 µs',
    impl: CB,
    ref: 'raw-json',
    op: '<=',
    ratio: 1.15,
  },
  {
    text: 'A: p99 latency ≤ 2× raw-json',
    case: 'A',
    variant: '64 B',
    metric: 'p99 µs',
    impl: CB,
    ref: 'raw-json',
    op: '<=',
    ratio: 2,
  },
  {
    text: 'B 64 B: calls/s ≥ 0.75× the batched raw ceiling',
    case: 'B',
    variant: '64 B',
    metric: 'calls/s',
    impl: CB,
    ref: 'raw-batched',
    op: '>=',
    ratio: 0.75,
  },
  {
    text: 'B 64 B: calls/s ≥ 1.5× raw-json',
    case: 'B',
    variant: '64 B',
    metric: 'calls/s',
    impl: CB,
    ref: 'raw-json',
    op: '>=',
    ratio: 1.5,
  },
  {
    text: 'C: sequential p50 ≤ 1.2× raw-json relay',
    case: 'C',
    variant: 'sequential',
    metric: 'p50 µs',
    impl: CB,
    ref: 'raw-json',
    op: '<=',
    ratio: 1.2,
  },
  {
    text: 'C: pipelined calls/s ≥ 1.3× raw-json relay',
    case: 'C',
    variant: 'pipelined',
    metric: 'calls/s',
    impl: CB,
    ref: 'raw-json',
    op: '>=',
    ratio: 1.3,
  },
  {
    text: 'D 1 KiB object: calls/s ≥ 1.3× raw-json',
    case: 'D',
    variant: '1 KiB',
    metric: 'calls/s',
    impl: CB,
    ref: 'raw-json',
    op: '>=',
    ratio: 1.3,
  },
  {
    text: 'D 64 KiB object: calls/s ≥ 0.95× raw-json',
    case: 'D',
    variant: '64 KiB',
    metric: 'calls/s',
    impl: CB,
    ref: 'raw-json',
    op: '>=',
    ratio: 0.95,
  },
  {
    text: 'E: publish to 8 workers, events/s ≥ 0.8× a loop batching 64 events per send',
    case: 'E',
    variant: 'publish, 8 workers',
    metric: 'events/s',
    impl: CB,
    ref: 'raw-batched',
    op: '>=',
    ratio: 0.8,
  },
  {
    text: 'E: callAll p50 ≤ 1.15× the hand-written fan-out loop, 8 workers',
    case: 'E',
    variant: 'callAll, 8 workers',
    metric: 'p50 µs',
    impl: CB,
    ref: 'raw-json',
    op: '<=',
    ratio: 1.15,
  },
  {
    text: 'E: callAll p50 ≤ 1.15× the hand-written fan-out loop, 16 workers',
    case: 'E',
    variant: 'callAll, 16 workers',
    metric: 'p50 µs',
    impl: CB,
    ref: 'raw-json',
    op: '<=',
    ratio: 1.15,
  },
  {
    text: 'F: store.increment calls/s ≥ 1.5× Redis INCR, counts exact',
    case: 'F',
    variant: '2 workers',
    metric: 'calls/s',
    impl: CB,
    ref: 'redis',
    op: '>=',
    ratio: 1.5,
  },
  {
    text: `H: HTTP req/s, one worker per core ÷ 1 worker (ceiling: the cores, ${os.availableParallelism()}×)`,
    case: 'H',
    variant: `${os.availableParallelism()} workers`,
    metric: 'req/s',
    impl: CB,
    ref: CB,
    refVariant: '1 worker',
    op: '>=',
    ratio: os.availableParallelism(),
    info: true,
  },
  {
    text: 'Memory: primary RSS grows ≤ 50 MB over the calls',
    case: 'M',
    variant: 'primary',
    metric: 'ΔRSS MB',
    impl: CB,
    limit: 50,
  },
  {
    text: 'Memory: worker RSS grows ≤ 50 MB over the calls',
    case: 'M',
    variant: 'worker',
    metric: 'ΔRSS MB',
    impl: CB,
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
  readonly status: 'met' | 'not met' | 'n/a' | 'info';
  /**
   * CPU µs per call of clusterbus ÷ the reference's, primary and worker (medians of the same
   * run): steadier than the rates on a shared machine. Absent where not measured.
   */
  readonly cpu?: string;
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
    const ref = median(cases, { ...t, impl: t.ref, variant: t.refVariant ?? t.variant });
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
    const cpu = (['primary CPU µs/call', 'worker CPU µs/call'] as const).map((metric) => {
      const a = median(cases, { ...t, metric });
      const b = median(cases, { ...t, metric, impl: t.ref, variant: t.refVariant ?? t.variant });
      return a === undefined || b === undefined || !(b > 0) ? undefined : a / b;
    });
    return {
      case: t.case,
      text: t.text,
      value: ratio,
      measured: `${ratio.toFixed(2)}×`,
      status: t.info === true ? 'info' : met ? 'met' : 'not met',
      ...(cpu[0] === undefined || cpu[1] === undefined
        ? {}
        : { cpu: `${cpu[0].toFixed(2)}× / ${cpu[1].toFixed(2)}×` }),
    };
  });
}
