/**
 * Case H: single process against the cluster, the comparison every clustering guide makes: the
 * HTTP demo (examples/http-cluster) under autocannon with 1 worker and with one per core, in the
 * same run, and where the primary's CPU goes (a CPU profile of it, by node:inspector, over a second, shorter load).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Session as Inspector } from 'node:inspector/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startHttpCluster } from '../../examples/http-cluster/primary.js';
import type { HttpLoadResult } from '../http-load.js';
import { CheckError } from '../payload.js';
import { type Profile, selfTimes } from '../profile-top.js';
import { type Session, START_TIMEOUT_MS } from '../session.js';
import type { Case, Sample } from './case.js';

const LOAD = fileURLToPath(new URL('../http-load.ts', import.meta.url));
const CORES = os.availableParallelism();

/** A session over the demo's cluster; `port` is where it listens. */
interface HttpSession extends Session {
  readonly port: number;
  readonly pids: readonly number[];
}

async function startHttp(workers: number): Promise<HttpSession> {
  const { app, port } = await startHttpCluster({
    workers,
    port: 0,
    readyTimeoutMs: START_TIMEOUT_MS,
  });
  const unsupported = () => Promise.reject(new Error('case H runs no bench job'));
  return {
    workers: app.workers().map((w) => w.id),
    pids: app.workers().map((w) => w.pid ?? 0),
    port,
    echo: unsupported,
    run: unsupported,
    publish: () => {},
    failed: new Promise<never>(() => {}),
    close: () => app.close({ timeoutMs: 5_000 }),
  };
}

/** CPU µs of a process from /proc (clock ticks: 10 ms), or NaN where there is none. */
function procCpuUs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return Number.NaN;
  }
}

/** Where the profile's self time goes, by part: the top lines for the report. */
function whereCpuGoes(profile: Profile, label: string): string[] {
  const { total, by } = selfTimes(profile);
  const idle = by.get('(idle) :0') ?? 0;
  const busy = total - idle;
  const parts = new Map<string, number>();
  const part = (key: string): string => {
    if (key.startsWith('(garbage collector)')) return 'garbage collection';
    if (/child_process\/serialization|child_process:|writeUtf8String|string_decoder/.test(key))
      return "Node's IPC channel (JSON, pipe)";
    if (/src\/protocol\//.test(key)) return 'clusterbus protocol (src/protocol)';
    if (/src\/bus\//.test(key)) return 'clusterbus bus and hub routing (src/bus)';
    if (/src\/state\//.test(key)) return 'the store host (src/state)';
    if (/src\//.test(key)) return 'clusterbus, other (src/)';
    if (/node_modules\/zod/.test(key)) return 'zod';
    if (/node_modules\/superjson/.test(key)) return 'superjson';
    if (/^\(program\)|^\(anonymous\) :|^runMicrotasks|task_queues|timers/.test(key))
      return 'V8 and the event loop';
    return 'other (Node internals, cluster, supervisor)';
  };
  for (const [k, v] of by) if (k !== '(idle) :0') parts.set(part(k), (parts.get(part(k)) ?? 0) + v);
  const rows = [...parts].sort((a, b) => b[1] - a[1]);
  const top = [...by].filter(([k]) => k !== '(idle) :0').sort((a, b) => b[1] - a[1]);
  return [
    `Where the primary's CPU goes (${label}: a CPU profile of the primary over the load, ${(busy / 1000).toFixed(0)} ms busy of ${(total / 1000).toFixed(0)} ms):`,
    '',
    ...rows.map(([k, v]) => `- ${k}: ${((100 * v) / busy).toFixed(1)}%`),
    '',
    `Top functions by self time: ${top
      .slice(0, 6)
      .map(([k, v]) => `\`${k}\` ${((100 * v) / busy).toFixed(1)}%`)
      .join(', ')}.`,
  ];
}

/** Runs the load generator for `seconds`; resolves with its output. */
async function runLoad(port: number, seconds: number, connections: number): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', LOAD, String(port), String(seconds), String(connections)],
    { encoding: 'utf8' },
  );
  return stdout;
}

export const httpCase: Case = {
  id: 'H',
  title: `Single process against the cluster (the HTTP demo, 1 worker and ${CORES} workers)`,
  about: `The demo's cluster (examples/http-cluster: every route uses the bus: a peer call, a call to the primary, a publish, a store increment per response) under autocannon (the demo's request mix, ${'`'}connections${'`'} from the config) in a process of its own, with 1 worker and with one per core (${CORES}), in the same run. req/s over the load; CPU of the primary (process.cpuUsage) and of all the workers together (/proc) per request; then, for the one-per-core cluster, a second load of half the time under a CPU profile of the primary (node:inspector), which says where the primary's CPU goes. On ${CORES} cores the ceiling is ${CORES}×, less what the primary and the load generator take.`,
  workers: [1, CORES],
  impls: ['clusterbus'],
  start: startHttp,
  async measure(session, _impl, config) {
    const s = session as HttpSession;
    const { seconds, connections } = config.http;
    const variant = `${s.workers.length} worker${s.workers.length === 1 ? '' : 's'}`;
    const w0 = s.pids.map(procCpuUs);
    const p0 = process.cpuUsage();
    const t0 = performance.now();
    const stdout = await runLoad(s.port, seconds, connections);
    const wallMs = performance.now() - t0;
    const p = process.cpuUsage(p0);
    const w1 = s.pids.map(procCpuUs);
    let notes: string[] = [];
    if (s.workers.length === CORES) {
      // A second, shorter load under the profiler (it slows the primary: not the measured one).
      const inspector = new Inspector();
      inspector.connect();
      await inspector.post('Profiler.enable');
      await inspector.post('Profiler.start');
      await runLoad(s.port, Math.max(2, Math.round(seconds / 2)), connections);
      const { profile } = await inspector.post('Profiler.stop');
      inspector.disconnect();
      notes = whereCpuGoes(profile as unknown as Profile, variant);
    }
    const load = JSON.parse(stdout.trim().split('\n').pop()!) as HttpLoadResult;
    if (load.non2xx + load.errors + load.timeouts > 0 || load.requests === 0) {
      throw new CheckError(
        `HTTP load: ${load.requests} responses, ${load.non2xx} non-2xx, ${load.errors} errors, ${load.timeouts} timeouts`,
      );
    }
    const workerUs = w1.reduce((sum, us, i) => sum + us - w0[i]!, 0);
    const primaryUs = p.user + p.system;
    const samples: Sample[] = [
      { variant, metric: 'req/s', value: load.requests / load.seconds },
      { variant, metric: 'primary CPU µs/call', value: primaryUs / load.requests },
      { variant, metric: 'worker CPU µs/call', value: workerUs / load.requests },
      { variant, metric: 'primary CPU %', value: (100 * primaryUs) / (wallMs * 1000) },
    ];
    return { samples, notes };
  },
};
