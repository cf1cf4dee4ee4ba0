/**
 * The primary side of the suite: runs the cases, prints the tables, writes the results. Entry:
 * bench/run.ts.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import cluster from 'node:cluster';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startBirpc } from './baselines/birpc.js';
import { zodTyping } from './baselines/birpc-zod.js';
import { startRaw } from './baselines/raw.js';
import { startRedis } from './baselines/redis.js';
import type { Case } from './cases/case.js';
import { counterCase } from './cases/counter.js';
import { fanoutCase } from './cases/fanout.js';
import { httpCase } from './cases/http.js';
import { latencyCase } from './cases/latency.js';
import { memoryCase } from './cases/memory.js';
import { payloadCase, pipelinedCase } from './cases/pipelined.js';
import { relayCase } from './cases/relay.js';
import { chartSvg } from './chart.js';
import { startClusterbus } from './clusterbus.js';
import { type Config, FULL, QUICK } from './config.js';
import { INTRO } from './intro.js';
import {
  CHART_PATH,
  caseMarkdown,
  currentCommit,
  describeMachine,
  loadAverage,
  plural,
  type Results,
  type RunMeta,
  targetsMarkdown,
  writeBenchmarksMd,
  writeJson,
} from './report.js';
import { type CaseResult, runCase } from './runner.js';
import { IMPLS, type ImplName, type StartSession } from './session.js';
import { evaluate } from './targets.js';

const CASES: readonly Case[] = [
  latencyCase,
  pipelinedCase,
  relayCase,
  payloadCase,
  fanoutCase,
  counterCase,
  httpCase,
  memoryCase,
];

const STARTERS: Readonly<Record<ImplName, StartSession>> = {
  'raw-json': (n) => startRaw(n),
  'raw-batched': (n) => startRaw(n, 'raw-batched'),
  birpc: (n) => startBirpc(n),
  'birpc+zod': (n) => startBirpc(n, zodTyping),
  clusterbus: startClusterbus,
  redis: startRedis,
};

const RESULTS_JSON = fileURLToPath(new URL('./results/latest.json', import.meta.url));
const BENCHMARKS_MD = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));
const CHART = fileURLToPath(new URL(`../${CHART_PATH}`, import.meta.url));
/** Set in the re-executed primary, so it never re-executes again. */
export const CHILD_ENV = 'BENCH_WITH_GC';

interface Options {
  readonly config: Config;
  readonly writeMd: boolean;
  /** The cases to run, in suite order. */
  readonly cases: readonly Case[];
  /** Re-render a run's results file (its targets re-evaluated) instead of running. */
  readonly fromJson: string | undefined;
}

/** A comma-separated list, each item one of `valid`. */
function list(value: string, valid: readonly string[], flag: string): Set<string> {
  const items = value.split(',').map((s) => s.trim());
  const unknown = items.filter((i) => !valid.includes(i));
  if (unknown.length > 0) {
    throw new Error(`${flag}: unknown ${unknown.join(', ')} (valid: ${valid.join(', ')})`);
  }
  return new Set(items);
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      'write-md': { type: 'boolean', default: false },
      rounds: { type: 'string' },
      only: { type: 'string' },
      impls: { type: 'string' },
      'from-json': { type: 'string' },
    },
  });
  let config = values.quick ? QUICK : FULL;
  if (values.rounds !== undefined) {
    const rounds = Number(values.rounds);
    if (!Number.isSafeInteger(rounds) || rounds < 1) {
      throw new Error('--rounds must be a positive integer');
    }
    config = { ...config, rounds };
  }
  let cases = CASES;
  if (values.only !== undefined) {
    const only = list(
      values.only.toUpperCase(),
      CASES.map((c) => c.id),
      '--only',
    );
    cases = cases.filter((c) => only.has(c.id));
  }
  if (values.impls !== undefined) {
    const impls = list(values.impls, IMPLS, '--impls');
    cases = cases.map((c) => ({ ...c, impls: c.impls.filter((i) => impls.has(i)) }));
  }
  return { config, writeMd: values['write-md'], cases, fromJson: values['from-json'] };
}

/** Re-runs this script with `--expose-gc` (for memory samples after a GC); resolves its exit code. */
export function reexecWithGc(): Promise<number> {
  const child = spawn(
    process.execPath,
    [...process.execArgv, '--expose-gc', ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, [CHILD_ENV]: '1' } },
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => child.kill(signal));
  }
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal === null ? 0 : 1)));
  });
}

/** Kills every worker still alive: on a signal or a crash, the bench leaves nothing behind. */
export function killWorkers(): void {
  for (const w of Object.values(cluster.workers ?? {})) {
    if (w !== undefined && !w.isDead()) w.process.kill('SIGKILL');
  }
}

/** Runs the suite; resolves with the exit code. */
export async function main(): Promise<number> {
  const { config, writeMd, cases: selected, fromJson } = options();
  if (fromJson !== undefined) return render(fromJson, writeMd);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const machine = describeMachine();
  const startedAt = new Date().toISOString();
  const commit = currentCommit();
  if (typeof globalThis.gc !== 'function')
    log('warning: no --expose-gc: memory samples without a GC');
  log(
    `clusterbus bench: ${config.mode} mode, ${plural(config.rounds, 'round')}, commit ${commit}, ${machine.cpu} x${machine.cores}, node ${machine.node}, load ${machine.loadStart.join(' ')}`,
  );
  const t0 = performance.now();
  const cases: CaseResult[] = [];
  for (const c of selected) {
    const result = await runCase(c, config, STARTERS, log);
    cases.push(result);
    process.stdout.write(`\n${caseMarkdown(result)}`);
  }
  const targets = evaluate(cases);
  const ran = new Set(cases.map((c) => c.id));
  process.stdout.write(
    `\n### Targets\n\n${targetsMarkdown(targets.filter((t) => ran.has(t.case)))}`,
  );
  const meta: RunMeta = {
    mode: config.mode,
    rounds: config.rounds,
    startedAt,
    durationS: (performance.now() - t0) / 1000,
    commit,
    machine: { ...machine, loadEnd: loadAverage() },
  };
  const results: Results = { meta, config, targets, cases };
  writeJson(RESULTS_JSON, results);
  log(`\nwrote ${RESULTS_JSON} (${meta.durationS.toFixed(0)} s)`);
  if (writeMd) {
    writeBenchmarksMd(BENCHMARKS_MD, results, INTRO);
    writeFileSync(
      CHART,
      chartSvg(
        cases,
        `clusterbus against each baseline (${meta.mode} run of ${meta.startedAt.slice(0, 10)}, commit ${meta.commit})`,
      ),
    );
    log(`wrote ${BENCHMARKS_MD} and ${CHART}`);
  }
  return cases.some((c) => c.status === 'failed') ? 1 : 0;
}

/**
 * Renders the results file of a run again (`--from-json bench/results/latest.json`), its targets
 * re-evaluated by this version of the suite: prints the targets, and with `--write-md` rewrites
 * BENCHMARKS.md and the chart. Resolves with the exit code.
 */
function render(file: string, writeMd: boolean): number {
  const old = JSON.parse(readFileSync(file, 'utf8')) as Results;
  const results: Results = { ...old, targets: evaluate(old.cases) };
  process.stdout.write(`\n### Targets\n\n${targetsMarkdown(results.targets)}`);
  if (writeMd) {
    writeBenchmarksMd(BENCHMARKS_MD, results, INTRO);
    writeFileSync(CHART, chartSvg(results.cases, chartTitle(results.meta)));
    process.stderr.write(`wrote ${BENCHMARKS_MD} and ${CHART} from ${file}\n`);
  }
  return 0;
}

function chartTitle(meta: RunMeta): string {
  return `clusterbus against each baseline (${meta.mode} run of ${meta.startedAt.slice(0, 10)}, commit ${meta.commit})`;
}
