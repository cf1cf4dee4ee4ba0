/**
 * Summarizes V8 CPU profiles (`node --cpu-prof`): self time by function, the top entries, and
 * the share of garbage collection. Usage: node --import tsx bench/profile-top.ts FILE... [--top N]
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time by function (`name file:line`), in µs, and the total. */
export function selfTimes(profile: Profile): { total: number; by: Map<string, number> } {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const by = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const f = nodes.get(id)?.callFrame;
    if (f === undefined) return;
    const file = f.url.replace(/^.*\/(node_modules\/|src\/|bench\/)/, '$1');
    const key = `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}`;
    by.set(key, (by.get(key) ?? 0) + dt);
    total += dt;
  });
  return { total, by };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string', default: '25' } },
    allowPositionals: true,
  });
  for (const file of positionals) {
    const { total, by } = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as Profile);
    const idle = by.get('(idle) :0') ?? 0;
    const busy = total - idle;
    console.log(
      `\n${file}: ${(busy / 1000).toFixed(0)} ms busy of ${(total / 1000).toFixed(0)} ms`,
    );
    const rows = [...by].filter(([k]) => k !== '(idle) :0').sort((a, b) => b[1] - a[1]);
    for (const [k, v] of rows.slice(0, Number(values.top))) {
      console.log(`${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`);
    }
  }
}
