/**
 * The flagship demo, run by `npm run demo`: the HTTP cluster under real load, with a worker
 * killed halfway through.
 *
 * This process is the cluster's primary. It starts one worker per core (server.ts), drives HTTP
 * load at them with autocannon for DEMO_DURATION_S seconds (default 6) over DEMO_CONNECTIONS
 * connections (default 8), and SIGKILLs one worker halfway through. Then it checks what happened:
 * the requests served, counted per worker by the workers and gathered with callAll; the
 * replacement worker; and one last invalidation that every live worker must have applied. It
 * ends with one `DEMO_RESULT {json}` line and exits 0 only if the checks passed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import os from 'node:os';
import autocannon from 'autocannon';
import type { WorkerStats } from './contract.js';
import { type HttpCluster, startHttpCluster, waitFor } from './primary.js';

const durationS = positive('DEMO_DURATION_S', 6);
const connections = positive('DEMO_CONNECTIONS', 8);
const workerCount = os.availableParallelism();

/** The mix every connection cycles through. */
const REQUESTS = [
  { method: 'GET', path: '/cache?key=product:1' },
  { method: 'GET', path: '/peer' },
  { method: 'GET', path: '/cache?key=product:2' },
  { method: 'GET', path: '/primary' },
  { method: 'GET', path: '/cache?key=product:1' },
  { method: 'POST', path: '/invalidate?key=product:1' },
  { method: 'GET', path: '/' },
] as const;

/** The killed worker's story, as the cluster's lifecycle events tell it. */
interface Kill {
  readonly workerId: number;
  readonly pid: number;
  readonly at: number;
  exit?: { signal: string | null; code: number | null; planned: boolean };
  replacedBy?: number;
  onlineAfterMs?: number;
  connectedAfterMs?: number;
}

const t0 = Date.now();
/** Prints a line, prefixed with the time since the demo started. */
function log(line: string): void {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${line}`);
}

async function main(): Promise<boolean> {
  log(`starting ${workerCount} workers (one per core)`);
  const cluster = await startHttpCluster({ workers: workerCount, port: 0 });
  let figures: Figures;
  try {
    figures = await run(cluster);
  } finally {
    const closing = Date.now();
    await cluster.app.close();
    log(`cluster closed in ${Date.now() - closing} ms`);
  }
  printSummary(figures);
  console.log(`DEMO_RESULT ${JSON.stringify(figures)}`);
  return figures.passed;
}

type Figures = Awaited<ReturnType<typeof run>>;

async function run({ app, port }: HttpCluster) {
  const initial = app.workers();
  const pids = new Set(initial.map((w) => w.pid!));
  log(`up: ${initial.map((w) => `worker ${w.id} (pid ${w.pid})`).join(', ')}, port ${port}`);

  // ------------------------------------------------------------------ lifecycle of the kill
  let kill: Kill | undefined;
  app.on('worker:exit', ({ workerId, signal, code, planned, replacedBy }) => {
    if (workerId !== kill?.workerId) return;
    kill.exit = { signal, code, planned };
    kill.replacedBy = replacedBy;
    const how = `${signal ?? `code ${code}`}, ${planned ? 'planned' : 'unplanned'}`;
    log(`worker ${workerId} exited (${how}); replaced by worker ${replacedBy ?? '-'}`);
  });
  app.on('worker:online', ({ workerId, pid }) => {
    pids.add(pid);
    if (kill === undefined || workerId !== kill.replacedBy) return;
    kill.onlineAfterMs = Date.now() - kill.at;
    log(`worker ${workerId} online (pid ${pid}), ${kill.onlineAfterMs} ms after the kill`);
  });
  app.on('worker:connected', ({ workerId }) => {
    if (kill === undefined || workerId !== kill.replacedBy) return;
    kill.connectedAfterMs = Date.now() - kill.at;
    log(`worker ${workerId} connected its bus, ${kill.connectedAfterMs} ms after the kill`);
  });
  const killTimer = setTimeout(() => {
    const victim = app.workers()[0];
    if (victim?.pid === undefined) return;
    kill = { workerId: victim.id, pid: victim.pid, at: Date.now() };
    log(`SIGKILL worker ${victim.id} (pid ${victim.pid})`);
    process.kill(victim.pid, 'SIGKILL');
  }, durationS * 500);

  // ------------------------------------------------------------------ the load
  // Counted on the client side from each response's own x-route and x-worker headers.
  const byRoute = new Map<string, Map<number, number>>(); // route -> status -> responses
  const byWorker = new Map<number, number>(); // worker id -> responses
  const connErrors = new Map<string, number>(); // connection errors and timeouts, by code
  const onResponse = (status: number, _b: string, _c: object, headers?: IncomingHttpHeaders) => {
    const route = String(headers?.['x-route'] ?? '?');
    const statuses = byRoute.get(route) ?? new Map<number, number>();
    byRoute.set(route, statuses.set(status, (statuses.get(status) ?? 0) + 1));
    const worker = Number(headers?.['x-worker'] ?? 0);
    byWorker.set(worker, (byWorker.get(worker) ?? 0) + 1);
  };
  const routes = [...new Set(REQUESTS.map((r) => `${r.method} ${r.path.split('?')[0]}`))];
  log(`load: ${durationS} s over ${connections} connections: ${routes.join(', ')}`);
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `http://localhost:${port}`,
        connections,
        duration: durationS,
        timeout: 5,
        // Clients come and go: each connection reconnects every 100 requests, so new connections
        // reach every worker, the replacement included.
        reconnectRate: 100,
        requests: REQUESTS.map((r) => ({ ...r, onResponse })),
      },
      (error: unknown, res) => (error ? reject(error) : resolve(res)),
    );
    instance.on('reqError', (error: { code?: string; message?: string }) => {
      const code = error.code ?? error.message ?? 'unknown';
      connErrors.set(code, (connErrors.get(code) ?? 0) + 1);
    });
  });
  clearTimeout(killTimer);
  log('load finished');

  // ------------------------------------------------------------------ after the load
  const killed = kill;
  if (killed !== undefined) {
    await waitFor(() => killed.connectedAfterMs !== undefined, 15_000, 'the replacement').catch(
      (error: unknown) => log(String(error)),
    );
  }

  // One last invalidation, from the primary: every live worker, the replacement too, applies it.
  // Delivery is asynchronous: ask the workers until all of them have it, for at most 3 s.
  const finalKey = `final:${Date.now()}`;
  const publishedAt = Date.now();
  app.bus.publish('cache.invalidate', { key: finalKey });
  let stats: WorkerStats[] = [];
  let statsFailed: string[] = [];
  const live = () => app.workers().map((w) => w.id);
  const appliedBy = () =>
    stats.filter((w) => w.invalidations.recentKeys.includes(finalKey)).map((w) => w.workerId);
  do {
    const all = await app.bus.callAll('stats', undefined, { timeoutMs: 2_000 });
    stats = all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    statsFailed = all.flatMap((r) =>
      r.status === 'rejected' ? [`worker ${r.workerId}: ${r.error.code}`] : [],
    );
  } while (appliedBy().length < live().length && Date.now() < publishedAt + 3_000);
  const appliedWithinMs = Date.now() - publishedAt;
  const missing = live().filter((id) => !appliedBy().includes(id));

  // ------------------------------------------------------------------ the figures
  const responses = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
  const replacement = stats.find((w) => w.workerId === killed?.replacedBy);
  const checks = {
    served: result['2xx'] > 0,
    replacementOnline: killed?.connectedAfterMs !== undefined && replacement !== undefined,
    allWorkersApplied: missing.length === 0 && appliedBy().length > 0,
  };
  const ids = [...new Set([...byWorker.keys(), ...stats.map((w) => w.workerId)])];
  return {
    passed: Object.values(checks).every(Boolean),
    checks,
    durationS: result.duration,
    connections,
    workers: workerCount,
    responses,
    served: result['2xx'],
    reqPerS: Math.round(responses / result.duration),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    non2xx: Object.fromEntries(
      Object.entries(result.statusCodeStats ?? {})
        .filter(([status]) => !status.startsWith('2'))
        .map(([status, s]) => [status, s.count ?? 0]),
    ),
    connectionErrors: Object.fromEntries(connErrors),
    byRoute: Object.fromEntries([...byRoute].map(([r, s]) => [r, Object.fromEntries(s)])),
    perWorker: ids
      .sort((a, b) => a - b)
      .map((id) => {
        const w = stats.find((s) => s.workerId === id);
        return {
          workerId: id,
          pid: w?.pid ?? (id === killed?.workerId ? killed.pid : null),
          role: id === killed?.workerId ? 'killed' : id === killed?.replacedBy ? 'new' : '',
          /** Responses the client recorded from it. */
          seenByClient: byWorker.get(id) ?? 0,
          /** Responses it counted itself (null: it is gone, and its counters with it). */
          counted: w === undefined ? null : total(w),
          requests: w?.requests ?? null,
          peerCalls: w?.peerCalls ?? null,
          invalidationsApplied: w?.invalidations.applied ?? null,
        };
      }),
    statsFailed,
    killed:
      killed === undefined ? null : { workerId: killed.workerId, pid: killed.pid, ...killed.exit },
    replacement:
      killed?.replacedBy === undefined
        ? null
        : {
            workerId: killed.replacedBy,
            online: killed.onlineAfterMs !== undefined,
            connected: killed.connectedAfterMs !== undefined,
            onlineAfterMs: killed.onlineAfterMs ?? null,
            connectedAfterMs: killed.connectedAfterMs ?? null,
            served: replacement === undefined ? null : total(replacement),
          },
    invalidation: {
      key: finalKey,
      liveWorkers: live(),
      appliedBy: appliedBy(),
      missing,
      allApplied: checks.allWorkersApplied,
      appliedWithinMs,
      /** POST /invalidate answered 202 during the load... */
      acknowledgedDuringLoad: byRoute.get('/invalidate')?.get(202) ?? 0,
      /** ...and how many the workers alive throughout applied (the final one left out). */
      appliedBySurvivors: Object.fromEntries(
        stats
          .filter((w) => initial.some((i) => i.id === w.workerId))
          .map((w) => [w.workerId, w.invalidations.applied - 1]),
      ),
    },
    workerPids: [...pids],
  };
}

function printSummary(f: Figures): void {
  const list = (counts: Record<string, number>) =>
    Object.entries(counts)
      .map(([what, n]) => `${n} x ${what}`)
      .join(', ') || 'none';
  const out: string[] = [
    '',
    '-------------------------------- summary --------------------------------',
  ];
  out.push(
    `HTTP     ${f.responses} responses in ${f.durationS} s (${f.reqPerS} req/s, ${f.connections} connections), latency p50 ${f.latencyMs.p50} ms, p99 ${f.latencyMs.p99} ms`,
    `         2xx: ${f.served}`,
    `         non-2xx: ${list(f.non2xx)}`,
    `         connection errors: ${list(f.connectionErrors)}${Object.keys(f.connectionErrors).length > 0 ? ' (connections to the killed worker: expected)' : ''}`,
  );
  for (const [route, statuses] of Object.entries(f.byRoute)) {
    out.push(`         ${route.padEnd(11)} ${list(statuses)}`);
  }
  out.push('', 'WORKERS  responses counted by each worker, gathered with callAll after the load');
  const ROUTE_COLUMNS = ['/cache', '/peer', '/primary', '/invalidate', '/'] as const;
  const rows = [
    ['', 'pid', 'client saw', 'counted', ...ROUTE_COLUMNS, 'hellos', 'rerouted', 'invalidations'],
  ];
  for (const w of f.perWorker) {
    const name = `worker ${w.workerId}${w.role === '' ? '' : ` (${w.role})`}`;
    const head = [name, String(w.pid ?? '?'), String(w.seenByClient)];
    if (w.requests === null || w.peerCalls === null) {
      rows.push([...head, 'gone']);
      continue;
    }
    const requests = w.requests;
    rows.push([
      ...head,
      String(w.counted),
      ...ROUTE_COLUMNS.map((route) => String(requests[route])),
      String(w.peerCalls.answered),
      String(w.peerCalls.rerouted),
      String(w.invalidationsApplied),
    ]);
  }
  out.push(...table(rows).map((line) => `  ${line}`));
  out.push(
    '  client saw: responses autocannon recorded, which leaves out the one that ends each',
    '    connection (it reconnects every 100 requests); counted: by the worker itself',
    '  hellos: /peer calls it answered for other workers; rerouted: its own /peer calls that hit',
    '    the killed worker and went to another one; invalidations: events it applied',
  );
  for (const failure of f.statsFailed) out.push(`  stats failed on ${failure}`);
  out.push('');
  const k = f.killed;
  const r = f.replacement;
  out.push(
    k === null
      ? 'KILL     no worker was killed (the load ended first)'
      : `KILL     worker ${k.workerId} (pid ${k.pid}) exited by ${k.signal ?? `code ${k.code}`}, ${k.planned ? 'planned' : 'unplanned'}; ` +
          (r === null
            ? 'not replaced'
            : `replaced by worker ${r.workerId}: online after ${r.onlineAfterMs ?? '-'} ms, connected after ${r.connectedAfterMs ?? '-'} ms, then served ${r.served ?? '?'} requests`),
  );
  const inv = f.invalidation;
  const survivors =
    Object.entries(inv.appliedBySurvivors)
      .map(([id, n]) => `${n} (worker ${id})`)
      .join(', ') || 'none';
  out.push(
    `INVAL    '${inv.key}', published by the primary after the load, applied by ${inv.appliedBy.length} of ${inv.liveWorkers.length} live workers [${inv.appliedBy.join(', ')}] within ${inv.appliedWithinMs} ms${inv.missing.length > 0 ? `; MISSING on ${inv.missing.join(', ')}` : ''}`,
    `         during the load, clients recorded ${inv.acknowledgedDuringLoad} acknowledged invalidations; the workers alive throughout applied ${survivors}`,
    '',
    `CHECKS   ${Object.entries(f.checks)
      .map(([name, ok]) => `${name} ${ok ? 'ok' : 'FAILED'}`)
      .join(', ')}: ${f.passed ? 'PASSED' : 'FAILED'}`,
    '-------------------------------------------------------------------------',
  );
  console.log(out.join('\n'));
}

// ------------------------------------------------------------------ helpers

function total(w: WorkerStats): number {
  return Object.values(w.requests).reduce((a, b) => a + b, 0);
}

/** Pads each column to its widest cell; the first column left-aligned, the others right. */
function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  '),
  );
}

function positive(name: string, fallback: number): number {
  const value = process.env[name];
  const n = Number(value ?? fallback);
  if (!(n > 0)) throw new Error(`${name} must be a positive number, got ${value}`);
  return n;
}

main().then(
  (passed) => {
    process.exitCode = passed ? 0 : 1;
  },
  (error: unknown) => {
    console.error('demo failed:', error);
    process.exitCode = 1;
  },
);
