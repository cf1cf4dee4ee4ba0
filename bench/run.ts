/**
 * The benchmark suite: `npm run bench` (full), `npm run bench -- --quick` (under a minute).
 * Options: `--write-md` (rewrite the results section of BENCHMARKS.md), `--rounds N`,
 * `--only A,C,M` (cases), `--impls raw-json,clusterbus`. Workers are forked from this same file and branch on `cluster.isPrimary`
 * and `BENCH_IMPL`. Results: printed as Markdown, written to bench/results/latest.json.
 *
 * @module
 */
import cluster from 'node:cluster';

// Workers load only their own implementation (bench/worker.ts); the primary loads the suite.
if (!cluster.isPrimary) {
  await (await import('./worker.js')).startWorker();
} else {
  const { CHILD_ENV, killWorkers, main, reexecWithGc } = await import('./main.js');
  if (typeof globalThis.gc !== 'function' && process.env[CHILD_ENV] === undefined) {
    process.exitCode = await reexecWithGc();
  } else {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        killWorkers();
        process.exit(130);
      });
    }
    try {
      process.exitCode = await main();
    } catch (error) {
      killWorkers();
      console.error(error);
      process.exitCode = 1;
    }
  }
}
