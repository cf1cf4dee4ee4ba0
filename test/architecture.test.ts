/**
 * The shape of `src/`: no import cycle (type-only imports included, as dependency-cruiser sees
 * them before TypeScript erases them) and no file over {@link MAX_LINES} lines.
 *
 * Each rule has an allowlist of today's exceptions, to be emptied as the core is restructured:
 * the test fails on a cycle or an oversized file that is not listed, on a listed file that grew,
 * and on an entry that no longer applies (remove it, so that it cannot come back).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type IMiniDependency } from 'dependency-cruiser';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The longest a file of `src/` may be, in lines. */
const MAX_LINES = 400;

/**
 * The import cycles of today, each as its modules from the alphabetically first, back to it.
 * Remove an entry once its cycle is gone (the test says which).
 */
const KNOWN_CYCLES: readonly string[] = [];

/**
 * The files of `src/` over {@link MAX_LINES} lines today, with their size then: none may grow.
 * Lower a size when a file shrinks; remove an entry once its file is at most MAX_LINES lines.
 */
const OVERSIZED: Readonly<Record<string, number>> = {};

/**
 * Every import cycle among the modules of `root`/src, each once, as in {@link KNOWN_CYCLES}, and
 * the relative imports it could not resolve.
 */
async function importCycles(root: string): Promise<{ cycles: string[]; unresolved: string[] }> {
  const tsconfig = path.join(root, 'tsconfig.json');
  const result = await cruise(
    ['src'],
    {
      baseDir: root,
      includeOnly: '^src/',
      // Type-only imports are edges too: they are erased from the JavaScript, not from the design.
      tsPreCompilationDeps: true,
      tsConfig: { fileName: tsconfig },
      validate: true,
      ruleSet: {
        forbidden: [{ name: 'no-circular', severity: 'error', from: {}, to: { circular: true } }],
      },
    },
    {},
    { tsConfig: extractTSConfig(tsconfig) },
  );
  if (typeof result.output === 'string') throw new Error('dependency-cruiser: expected JSON');
  const cycles = new Set<string>();
  for (const v of result.output.summary.violations) {
    if (v.rule.name !== 'no-circular' || v.cycle === undefined) continue;
    // A violation is the edge from -> to, and the way from `to` back to `from`.
    cycles.add(canonical([v.from, ...v.cycle.map((d: IMiniDependency) => d.name)]));
  }
  const unresolved = result.output.modules.flatMap((m) =>
    m.dependencies
      .filter((d) => d.couldNotResolve && d.module.startsWith('.'))
      .map((d) => `${m.source} -> ${d.module}`),
  );
  return { cycles: [...cycles].sort(), unresolved };
}

/** `[b, c, a, b]` (a closed walk) as `a -> b -> c -> a`: started at its first module by name. */
function canonical(walk: string[]): string {
  const ring = walk[0] === walk.at(-1) ? walk.slice(0, -1) : walk;
  const first = ring.indexOf([...ring].sort()[0]!);
  const rotated = [...ring.slice(first), ...ring.slice(0, first)];
  return [...rotated, rotated[0]].join(' -> ');
}

/** The line count of every `.ts` file under `src/`, by path from the root. */
function lineCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  const entries = readdirSync(path.join(ROOT, 'src'), { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = path.join(entry.parentPath, entry.name);
    const text = readFileSync(file, 'utf8');
    const lines = text.length === 0 ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    counts.set(path.relative(ROOT, file).split(path.sep).join('/'), lines);
  }
  return counts;
}

describe('architecture of src/', () => {
  it('has no import cycle, type-only imports included, beyond the known ones', async () => {
    const { cycles, unresolved } = await importCycles(ROOT);
    // An import it cannot resolve is an edge it cannot see: a cycle could hide behind it.
    expect(unresolved, 'imports dependency-cruiser could not resolve').toEqual([]);
    const problems = [
      ...cycles
        .filter((c) => !KNOWN_CYCLES.includes(c))
        .map((c) => `new import cycle: ${c} (break it; type-only imports count too)`),
      ...KNOWN_CYCLES.filter((c) => !cycles.includes(c)).map(
        (c) => `cycle gone, remove it from KNOWN_CYCLES: ${c}`,
      ),
    ];
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it(`has no file over ${MAX_LINES} lines beyond the known ones, and none of those grew`, () => {
    const counts = lineCounts();
    const problems: string[] = [];
    for (const [file, lines] of counts) {
      const allowed = OVERSIZED[file];
      if (allowed === undefined && lines > MAX_LINES) {
        problems.push(`${file}: ${lines} lines, over ${MAX_LINES} (split it by concept)`);
      } else if (allowed !== undefined && lines > allowed) {
        problems.push(`${file}: ${lines} lines, grew past its allowed ${allowed} (shrink it)`);
      }
    }
    for (const [file, allowed] of Object.entries(OVERSIZED)) {
      const lines = counts.get(file);
      if (lines === undefined || lines <= MAX_LINES) {
        problems.push(
          `${file}: ${lines === undefined ? 'gone' : `${lines} lines`}, remove it from OVERSIZED (was ${allowed})`,
        );
      }
    }
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('sees a cycle made only of type-only imports, and names each module of it', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'clusterbus-cycle-'));
    try {
      mkdirSync(path.join(root, 'src'));
      writeFileSync(path.join(root, 'tsconfig.json'), '{ "compilerOptions": { "strict": true } }');
      const files: Record<string, string> = {
        'a.ts': "import type { B } from './b.js';\nexport interface A { b?: B }\n",
        'b.ts': "import type { C } from './c.js';\nexport interface B { c?: C }\n",
        'c.ts': "import { type A } from './a.js';\nexport interface C { a?: A }\n",
        'd.ts': "import type { A } from './a.js';\nexport type D = A;\n",
      };
      for (const [name, text] of Object.entries(files)) {
        writeFileSync(path.join(root, 'src', name), text);
      }
      expect(await importCycles(root)).toEqual({
        cycles: ['src/a.ts -> src/b.ts -> src/c.ts -> src/a.ts'],
        unresolved: [],
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
