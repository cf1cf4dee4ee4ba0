/**
 * The report: a Markdown table per case (median and min–max over the rounds, ratio of medians to
 * raw-json, and to Redis for F), the targets, the machine, and the JSON results file.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname } from 'node:path';
import type { Metric } from './cases/case.js';
import type { Config } from './config.js';
import type { CaseResult, Series } from './runner.js';
import type { ImplName } from './session.js';
import type { TargetResult } from './targets.js';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly loadStart: readonly number[];
  readonly loadEnd: readonly number[];
}

export interface RunMeta {
  readonly mode: Config['mode'];
  readonly rounds: number;
  readonly startedAt: string;
  readonly durationS: number;
  /** The commit measured, with `+dirty` when src/ or bench/ had uncommitted changes. */
  readonly commit: string;
  readonly machine: Machine;
}

export interface Results {
  readonly meta: RunMeta;
  readonly config: Config;
  readonly targets: readonly TargetResult[];
  readonly cases: readonly CaseResult[];
}

/** The 1, 5 and 15 min load averages, rounded. */
export function loadAverage(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

/** This machine; `loadEnd` is filled in at the end of the run. */
export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    node: process.version,
    loadStart: loadAverage(),
    loadEnd: [],
  };
}

export function currentCommit(): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = git('status', '--porcelain', '--', 'src', 'bench') !== '';
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? '+dirty' : ''}`;
  } catch {
    return 'unknown';
  }
}

// ------------------------------------------------------------------ formatting

/** `1 round`, `5 rounds`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function num(metric: Metric, v: number): string {
  if (!Number.isFinite(v)) return '—';
  if (metric.includes('µs')) return v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
  if (metric.endsWith('MB')) return v.toFixed(1);
  return Math.round(v).toLocaleString('en-US');
}

function cell(s: Series | undefined): string {
  if (s === undefined) return '—';
  const m = num(s.metric, s.median);
  return s.samples.length > 1 ? `${m} (${num(s.metric, s.min)}–${num(s.metric, s.max)})` : m;
}

function ratio(s: Series | undefined, ref: Series | undefined): string {
  if (s === undefined || ref === undefined || !(ref.median !== 0)) return '—';
  return `${(s.median / ref.median).toFixed(2)}×`;
}

function row(cells: readonly string[]): string {
  return `| ${cells.join(' | ')} |`;
}

/** The Markdown section of one case. */
export function caseMarkdown(c: CaseResult): string {
  const out = [`### ${c.id}. ${c.title}`, '', c.about, ''];
  if (c.status === 'failed') {
    out.push(`**FAILED** (no numbers reported): ${c.error}`, '');
    return out.join('\n');
  }
  const variants = [...new Set(c.series.map((s) => s.variant))];
  const metrics = [...new Set(c.series.map((s) => s.metric))];
  const refs = (['raw-json', 'raw-batched', 'redis'] as const).filter((r) =>
    c.series.some((s) => s.impl === r),
  );
  const showVariant = variants.length > 1;
  const header = [...(showVariant ? [''] : []), 'implementation'];
  /** Ratios to the references, for the headline metrics (not CPU per call). */
  const refsOf = (m: Metric) => (m.includes('CPU') ? [] : refs);
  for (const m of metrics) {
    header.push(c.rounds > 1 ? `${m}, median (min–max)` : m);
    for (const r of refsOf(m)) header.push(`× ${r}`);
  }
  out.push(row(header), row(header.map((_, i) => (i < (showVariant ? 2 : 1) ? '---' : '---:'))));
  const find = (variant: string, metric: Metric, impl: ImplName) =>
    c.series.find((s) => s.variant === variant && s.metric === metric && s.impl === impl);
  for (const v of variants) {
    for (const impl of c.impls) {
      if (!c.series.some((s) => s.variant === v && s.impl === impl)) continue;
      const cells = [...(showVariant ? [v] : []), impl];
      for (const m of metrics) {
        const s = find(v, m, impl);
        cells.push(cell(s));
        for (const r of refsOf(m)) cells.push(ratio(s, find(v, m, r)));
      }
      out.push(row(cells));
    }
  }
  for (const [impl, reason] of Object.entries(c.skipped))
    out.push('', `${impl}: skipped: ${reason}`);
  if (c.notes !== undefined && c.notes.length > 0) out.push('', ...c.notes);
  out.push('');
  return out.join('\n');
}

export function targetsMarkdown(targets: readonly TargetResult[]): string {
  const out = [
    row([
      'target (clusterbus)',
      'measured',
      'status',
      'CPU per call ÷ reference (primary / worker)',
    ]),
    row(['---', '---:', '---', '---:']),
  ];
  for (const t of targets) {
    const status =
      t.status === 'met'
        ? 'met'
        : t.status === 'not met'
          ? '**not met**'
          : t.status === 'info'
            ? 'reported'
            : 'n/a';
    out.push(row([t.text, t.measured, status, t.cpu ?? '—']));
  }
  return `${out.join('\n')}\n`;
}

export function machineMarkdown(meta: RunMeta): string {
  const m = meta.machine;
  return [
    `- CPU: ${m.cpu}, ${m.cores} cores available`,
    `- Memory: ${m.memoryGiB} GiB`,
    `- OS: ${m.os}`,
    `- Node: ${m.node}`,
    `- Load average (1, 5, 15 min) at start: ${m.loadStart.join(', ')}; at end: ${m.loadEnd.join(', ')}`,
    '',
  ].join('\n');
}

/** The results section: run, machine, targets, one table per case. */
export function resultsMarkdown(r: Results): string {
  const banner =
    r.meta.mode === 'quick'
      ? '> **Quick run**: fewer rounds and calls than a full run; indicative only. The reference figures come from a full run (`npm run bench -- --write-md`) on a quiet machine.\n\n'
      : '';
  return [
    '## Results',
    '',
    `${banner}Run of ${r.meta.startedAt}: ${r.meta.mode} mode, ${plural(r.meta.rounds, 'round')}, commit ${r.meta.commit}, ${Math.round(r.meta.durationS)} s. ${r.meta.rounds > 1 ? 'Each cell: the median over the rounds (min–max).' : 'Each cell: one measurement.'} Ratios are of medians from this run; for latencies lower is better, for rates higher.`,
    '',
    '### Machine',
    '',
    machineMarkdown(r.meta),
    '### Targets',
    '',
    targetsMarkdown(r.targets),
    '### At a glance',
    '',
    `![clusterbus against each baseline, per case: ratios to raw-json (Redis for F), longer is better](${CHART_PATH})`,
    '',
    "Each bar: an implementation's median as a ratio to the case's reference (raw-json; Redis for F), oriented so that longer is better (rates: x ÷ reference; latencies: reference ÷ x). The black line is the reference (1×).",
    '',
    ...r.cases.map(caseMarkdown),
  ].join('\n');
}

// ------------------------------------------------------------------ files

/** Where the chart is written, relative to BENCHMARKS.md. */
export const CHART_PATH = 'bench/chart.svg';

export function writeJson(path: string, results: Results): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
}

const START =
  '<!-- bench:results:start (generated by `npm run bench -- --write-md`; edits here are overwritten) -->';
const END = '<!-- bench:results:end -->';

/**
 * Writes the results into BENCHMARKS.md between the markers, keeping the prose around them; a
 * missing file is created from {@link intro}.
 */
export function writeBenchmarksMd(path: string, results: Results, intro: string): void {
  const section = `${START}\n${resultsMarkdown(results)}${END}`;
  if (existsSync(path)) {
    const text = readFileSync(path, 'utf8');
    const a = text.indexOf(START.slice(0, 30));
    const b = text.indexOf(END);
    if (a !== -1 && b > a) {
      writeFileSync(path, `${text.slice(0, a)}${section}${text.slice(b + END.length)}`);
      return;
    }
  }
  writeFileSync(path, `${intro}\n${section}\n`);
}
