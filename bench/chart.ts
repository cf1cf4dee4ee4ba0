/**
 * The results as a picture: a small hand-written SVG bar chart. One group of bars per case and
 * variant (its headline metric), one bar per implementation, as a ratio to the case's reference
 * (raw-json; Redis for F), oriented so that longer is better (rates: x / ref; latencies: ref / x).
 *
 * @module
 */
import { METRICS, type Metric } from './cases/case.js';
import type { CaseResult, Series } from './runner.js';
import type { ImplName } from './session.js';

const COLORS: Readonly<Record<ImplName, string>> = {
  'raw-json': '#9e9e9e',
  'raw-batched': '#616161',
  birpc: '#90caf9',
  'birpc+zod': '#1e88e5',
  redis: '#e57373',
  clusterbus: '#2e7d32',
};

/** One group of the chart. */
interface Group {
  readonly label: string;
  readonly bars: readonly { readonly impl: ImplName; readonly ratio: number }[];
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The groups of the chart: every case with a reference implementation, headline metrics only. */
export function chartGroups(cases: readonly CaseResult[]): Group[] {
  const groups: Group[] = [];
  for (const c of cases) {
    if (c.status !== 'ok') continue;
    const ref: ImplName = c.series.some((s) => s.impl === 'redis') ? 'redis' : 'raw-json';
    const variants = [...new Set(c.series.map((s) => s.variant))];
    for (const v of variants) {
      const headline = c.series.find(
        (s) => s.variant === v && !s.metric.includes('CPU') && !s.metric.includes('MB'),
      )?.metric;
      if (headline === undefined) continue;
      const of = (impl: ImplName): Series | undefined =>
        c.series.find((s) => s.variant === v && s.metric === headline && s.impl === impl);
      const base = of(ref)?.median;
      if (base === undefined || !(base > 0)) continue;
      const lower = METRICS[headline as Metric] === 'lower';
      const bars = c.impls
        .map((impl) => ({ impl, m: of(impl)?.median }))
        .filter((b): b is { impl: ImplName; m: number } => b.m !== undefined && b.m > 0)
        .map((b) => ({ impl: b.impl, ratio: lower ? base / b.m : b.m / base }));
      groups.push({ label: `${c.id} ${v}: ${headline}`, bars });
    }
  }
  return groups;
}

/** The SVG text of the chart. */
export function chartSvg(cases: readonly CaseResult[], title: string): string {
  const groups = chartGroups(cases);
  const bar = 11;
  const gap = 10;
  const left = 230;
  const width = 900;
  const plot = width - left - 70;
  const top = 56;
  const max = Math.max(2, ...groups.flatMap((g) => g.bars.map((b) => b.ratio)));
  const x = (r: number) => left + (plot * r) / max;
  const out: string[] = [];
  let y = top;
  for (const g of groups) {
    out.push(
      `<text x="${left - 8}" y="${y + (g.bars.length * bar) / 2 + 4}" text-anchor="end" font-size="11">${xml(g.label)}</text>`,
    );
    for (const b of g.bars) {
      const w = Math.max(1, x(b.ratio) - left);
      out.push(
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${bar - 2}" fill="${COLORS[b.impl]}"><title>${xml(`${b.impl}: ${b.ratio.toFixed(2)}×`)}</title></rect>`,
        `<text x="${(left + w + 4).toFixed(1)}" y="${y + bar - 3}" font-size="9">${b.ratio.toFixed(2)}×</text>`,
      );
      y += bar;
    }
    y += gap;
  }
  const height = y + 24;
  const ticks: string[] = [];
  for (let t = 0; t <= max; t += max > 6 ? 2 : 0.5) {
    ticks.push(
      `<line x1="${x(t)}" y1="${top - 4}" x2="${x(t)}" y2="${y}" stroke="${t === 1 ? '#000' : '#ddd'}" stroke-width="${t === 1 ? 1.2 : 0.6}"/>`,
      `<text x="${x(t)}" y="${y + 14}" font-size="9" text-anchor="middle">${t}×</text>`,
    );
  }
  const impls = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.impl)))];
  const legend = impls.map(
    (impl, i) =>
      `<rect x="${left + i * 110}" y="30" width="10" height="10" fill="${COLORS[impl]}"/><text x="${left + i * 110 + 14}" y="39" font-size="11">${impl}</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${xml(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<title>${xml(title)}</title>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="18" font-size="13" font-weight="bold">${xml(title)}</text>`,
    ...legend,
    ...ticks,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}
