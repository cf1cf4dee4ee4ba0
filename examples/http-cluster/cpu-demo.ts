/**
 * The CPU phase on its own (`node --import tsx examples/http-cluster/cpu-demo.ts`): starts the
 * HTTP cluster, runs the same load on `/cpu-inline` and on `/cpu` (CPU_DURATION_S seconds each,
 * default 4, CPU_CONNECTIONS connections, default 8), prints the comparison of the workers'
 * event-loop delay and one `CPU_RESULT {json}` line, and exits 0 only if it passed.
 */
import { cpuSummary, runCpuPhase } from './cpu-phase.js';
import { startHttpCluster } from './primary.js';

const seconds = Number(process.env.CPU_DURATION_S ?? 4);
const connections = Number(process.env.CPU_CONNECTIONS ?? 8);
const workers = process.env.WORKERS === undefined ? undefined : Number(process.env.WORKERS);

const { app, port } = await startHttpCluster({
  port: 0,
  ...(workers === undefined ? {} : { workers }),
});
let passed = false;
try {
  const figures = await runCpuPhase(app, port, { seconds, connections });
  for (const line of cpuSummary(figures)) console.log(line);
  console.log(`CPU_RESULT ${JSON.stringify(figures)}`);
  passed = figures.passed;
} finally {
  await app.close();
}
process.exitCode = passed ? 0 : 1;
