/**
 * The flagship demo, run by `npm run demo`: the HTTP cluster under real load, through a config
 * update, a rolling restart of every worker, and a worker killed with SIGKILL.
 *
 * This process is the cluster's primary. It starts one worker per core (server.ts) and drives
 * HTTP load at them with autocannon (load.ts) over DEMO_CONNECTIONS connections (default 8), in
 * three phases of about DEMO_DURATION_S seconds each (default 6):
 *
 *   1. config update: halfway through, `app.config.update()` changes the greeting `GET /` serves.
 *      Expected: no failed request, every worker acknowledges, every worker serves the new value.
 *   2. rolling restart: `app.restart()` replaces every worker, one slot at a time.
 *      Expected: no failed request (the workers drain with `bus.closeOnDrain`).
 *   3. SIGKILL: halfway through, one worker is killed. Its open connections fail (expected, and
 *      reported as this phase's); a replacement is forked and serves.
 *   4. CPU (cpu-phase.ts): the same load on a route that checks a batch of 1,000 records, run
 *      inline on the worker, then in the worker's thread pool. Expected: the workers' event-loop
 *      delay stays low with the pool.
 *
 * Every worker counts its 2xx responses by route in the `hits` store, held by the primary. After
 * each phase, the store's counts for the phase are compared with the 2xx responses autocannon
 * received, route by route: equal in phases 1 and 2, where no process dies; in phase 3 the killed
 * worker may take a few increments with it, and the difference is shown and explained.
 *
 * Then one last invalidation, published by the primary, must be applied by every live worker.
 *
 * The cluster runs with its management API on (a free loopback port, a random token): the demo
 * prints the dashboard's URL and token at the start (open it to watch the phases), and its summary
 * ends with what GET /stats and GET /health reported. The figures go, as JSON, to the file
 * DEMO_RESULT_FILE (default: a file in the temp directory), whose path the last line prints;
 * the demo exits 0 only if every check passed.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConfigUpdateResult, HealthBody, RestartResult, StatsBody } from 'clusterbus';
import type { WorkerStats } from './contract.js';
import { type CpuFigures, cpuSummary, runCpuPhase } from './cpu-phase.js';
import {
  type Load,
  type LoadFigures,
  type LoadRequest,
  type ProbeAnswer,
  probeWorkers,
  startLoad,
} from './load.js';
import { type HttpCluster, startHttpCluster, waitFor } from './primary.js';

const phaseSeconds = positive('DEMO_DURATION_S', 6);
const connections = positive('DEMO_CONNECTIONS', 8);
const workerCount = os.availableParallelism();

/** The mix every connection cycles through. */
const REQUESTS: readonly LoadRequest[] = [
  { method: 'GET', path: '/cache?key=product:1' },
  { method: 'GET', path: '/peer' },
  { method: 'GET', path: '/cache?key=product:2' },
  { method: 'GET', path: '/primary' },
  { method: 'GET', path: '/cache?key=product:1' },
  { method: 'POST', path: '/invalidate?key=product:1' },
  { method: 'GET', path: '/' },
];
const GREETINGS = ['hello', 'bonjour'] as const;

const t0 = performance.now();
/** Seconds since the demo started. */
const now = () => Math.round(performance.now() - t0) / 1000;
/** Prints a line, prefixed with the time since the demo started. */
function log(line: string): void {
  console.log(`[${now().toFixed(1).padStart(5)}s] ${line}`);
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<boolean> {
  log(`starting ${workerCount} workers (one per core)`);
  const token = randomBytes(18).toString('base64url');
  const cluster = await startHttpCluster({
    workers: workerCount,
    port: 0,
    config: { greeting: GREETINGS[0] },
    management: { port: 0, token },
    health: { intervalMs: 1_000 },
  });
  const api = cluster.app.management!;
  log(`dashboard: ${api.url} (token ${token})`);
  log(`  or: CLUSTER_API_PORT=${api.port} CLUSTER_API_TOKEN=${token} npx clusterbus status`);
  let figures: Figures;
  let cpu: CpuFigures; // 4. the CPU phase: a batch per request, inline, then in the thread pools
  try {
    figures = await run(cluster, token);
    cpu = await runCpuPhase(cluster.app, cluster.port, { seconds: phaseSeconds, connections });
  } finally {
    const closing = performance.now();
    await cluster.app.close();
    log(`cluster closed in ${Math.round(performance.now() - closing)} ms`);
  }
  printSummary(figures);
  for (const line of cpuSummary(cpu)) console.log(line);
  const file =
    process.env.DEMO_RESULT_FILE ?? path.join(os.tmpdir(), `clusterbus-demo-${process.pid}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ ...figures, passed: figures.passed && cpu.passed, cpu })}\n`,
  );
  console.log(`DEMO_RESULT written to ${file}`);
  return figures.passed && cpu.passed;
}

type Figures = Awaited<ReturnType<typeof run>>;

/** One route's count for one phase: in the `hits` store, and in autocannon's 2xx responses. */
interface RouteHits {
  readonly route: string;
  readonly store: number;
  readonly client: number;
}

interface HitsComparison {
  readonly routes: RouteHits[];
  readonly store: number;
  readonly client: number;
  /** autocannon's own count of 2xx responses (`client` is their sum by x-route: the same). */
  readonly autocannon2xx: number;
  /**
   * Every route's store count equals its client count (and every worker answered `stats`, so
   * every increment had settled when the store was read).
   */
  readonly equal: boolean;
  /** No route's store count is above its client count. */
  readonly notAbove: boolean;
  /** Increments the workers reported as failed during the phase (a timeout, a closed bus). */
  readonly failedIncrements: number;
  /** Workers whose `stats` call failed when the store was read (their increments unsettled). */
  readonly statsFailed: string[];
}

/** What the management API reported at the end: GET /health and GET /stats. */
async function readManagement(url: string, token: string) {
  const get = async (endpoint: string) => {
    const res = await fetch(new URL(endpoint, url), {
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: res.status, body: (await res.json()) as unknown };
  };
  const health = await get('health');
  const stats = await get('stats');
  return {
    url,
    healthStatus: health.status,
    health: health.body as HealthBody,
    statsStatus: stats.status,
    stats: stats.body as StatsBody,
  };
}

async function run({ app, port }: HttpCluster, token: string) {
  const initial = app.workers();
  const pids = new Set(initial.map((w) => w.pid!));
  log(`up: ${initial.map((w) => `worker ${w.id} (pid ${w.pid})`).join(', ')}, port ${port}`);

  // ------------------------------------------------------------------ lifecycle, as it happens
  let kill: Kill | undefined; // phase 3's victim
  app.on('worker:online', ({ pid }) => pids.add(pid));
  app.on('worker:replace', ({ workerId, slot, replacementId, reason }) =>
    log(`slot ${slot}: worker ${replacementId} forked to replace worker ${workerId} (${reason})`),
  );
  app.on('worker:ready', ({ workerId, slot, startMs }) =>
    log(`worker ${workerId} ready in slot ${slot} (listening), ${startMs} ms after its fork`),
  );
  app.on('worker:drain', ({ workerId, reason }) => {
    if (reason !== 'close') log(`worker ${workerId} draining (${reason})`);
  });
  app.on('worker:exit', ({ workerId, signal, code, planned }) => {
    if (planned) {
      log(`worker ${workerId} exited (${signal ?? `code ${code}`}, planned)`);
    }
  });

  /** Once every worker's increments have settled, the `hits` store's counts, by route. */
  async function readHits() {
    const all = await app.bus.callAll('stats', undefined, { timeoutMs: 10_000 });
    const stats = all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = all.flatMap((r) =>
      r.status === 'rejected' ? [`worker ${r.workerId}: ${r.error.code}`] : [],
    );
    const hits = app.bus.store('hits');
    const values = new Map<string, number>();
    for (const key of await hits.keys()) values.set(key, (await hits.get(key)) ?? 0);
    const failedIncrements = new Map(stats.map((w) => [w.workerId, w.hits.failed]));
    return { values, stats, failed, failedIncrements };
  }
  type Hits = Awaited<ReturnType<typeof readHits>>;

  function compareHits(before: Hits, after: Hits, load: LoadFigures): HitsComparison {
    const names = new Set([...after.values.keys(), ...Object.keys(load.ok2xxByRoute)]);
    const routes = [...names].sort().map((route) => ({
      route,
      store: (after.values.get(route) ?? 0) - (before.values.get(route) ?? 0),
      client: load.ok2xxByRoute[route] ?? 0,
    }));
    let failedIncrements = 0;
    for (const [id, n] of after.failedIncrements) {
      failedIncrements += n - (before.failedIncrements.get(id) ?? 0);
    }
    const client = routes.reduce((sum, r) => sum + r.client, 0);
    const statsFailed = [...before.failed, ...after.failed];
    return {
      routes,
      store: routes.reduce((sum, r) => sum + r.store, 0),
      client,
      autocannon2xx: load.ok2xx,
      equal:
        routes.every((r) => r.store === r.client) &&
        client === load.ok2xx &&
        statsFailed.length === 0,
      notAbove: routes.every((r) => r.store <= r.client),
      failedIncrements,
      statsFailed,
    };
  }

  /**
   * One phase: reads the store, runs the load while `during` does its part, then ends the load
   * gracefully. `compare()` reads the store again and compares its counts for the phase with the
   * client's.
   */
  async function phase<T>(name: string, during: (load: Load) => Promise<T>) {
    const before = await readHits();
    log(`${name}: load over ${connections} connections`);
    const load = startLoad({ port, connections, requests: REQUESTS, maxSeconds: 120, timeoutS: 3 });
    let detail: T;
    try {
      detail = await during(load);
    } catch (error) {
      await load.finish().catch(() => {});
      throw error;
    }
    // No new request; the answers to the requests in flight are awaited.
    const figures = await load.finish();
    log(
      `${name}: load finished: ${figures.responses} responses, ${figures.non2xx} non-2xx, ${figures.errors} errors`,
    );
    return {
      load: figures,
      detail,
      compare: async () => compareHits(before, await readHits(), figures),
    };
  }

  // ------------------------------------------------------------------ 1. config update
  const configPhase = await phase('1 config update', async (load) => {
    await sleep((phaseSeconds * 1000) / 2);
    const from = { version: app.config.version, greeting: app.config.current.greeting };
    const startedAt = performance.now();
    log(`config update: greeting '${from.greeting}' -> '${GREETINGS[1]}'`);
    const result: ConfigUpdateResult | { error: string } = await app.config
      .update({ greeting: GREETINGS[1] })
      .catch((error: unknown) => ({ error: String(error) }));
    const tookMs = Math.round(performance.now() - startedAt);
    if ('error' in result) log(`config update failed: ${result.error}`);
    else {
      log(
        `config v${result.version}: ${result.workers.map((a) => `worker ${a.workerId} ${a.status}`).join(', ')} (${tookMs} ms)`,
      );
    }
    await sleep(Math.max(0, load.startedAt + phaseSeconds * 1000 - performance.now()));
    return { from, atS: round1((startedAt - load.startedAt) / 1000), tookMs, result };
  });
  const configHits = await configPhase.compare();
  // After the update: every live worker, over fresh connections, answers with the new greeting.
  const liveAfterConfig = app.workers().map((w) => w.id);
  const configProbe = await probeWorkers(port, liveAfterConfig);
  const update = configPhase.detail.result;
  const newVersion = 'error' in update ? undefined : update.version;
  const servesNew = (id: number) =>
    configProbe.some((p) => p.worker === id) &&
    configProbe
      .filter((p) => p.worker === id)
      .every(
        (p) => p.status === 200 && p.greeting === GREETINGS[1] && p.configVersion === newVersion,
      );
  const config = {
    http: configPhase.load,
    hits: configHits,
    update: {
      from: configPhase.detail.from,
      to: newVersion === undefined ? null : { version: newVersion, greeting: GREETINGS[1] },
      atS: configPhase.detail.atS,
      tookMs: configPhase.detail.tookMs,
      error: 'error' in update ? update.error : null,
      accepted: 'error' in update ? false : update.accepted,
      acks:
        'error' in update
          ? []
          : update.workers.map((a) => ({
              workerId: a.workerId,
              slot: a.slot,
              status: a.status,
              error: a.error?.message ?? null,
            })),
    },
    /** `GET /` answers during the load, by worker and config version. */
    servedVersions: configPhase.load.configVersions,
    probe: configProbe,
    liveWorkers: liveAfterConfig,
    everyWorkerOnNew: liveAfterConfig.length > 0 && liveAfterConfig.every(servesNew),
  };

  // ------------------------------------------------------------------ 2. rolling restart
  const beforeRestart = app.workers().map((w) => ({ id: w.id, slot: w.slot }));
  const thirdMs = Math.max(1_000, (phaseSeconds * 1000) / 3);
  const restartPhase = await phase('2 rolling restart', async (load) => {
    await sleep(thirdMs);
    const startedAt = performance.now();
    log(`rolling restart of ${beforeRestart.length} workers`);
    const result: RestartResult | { error: string } = await app
      .restart()
      .catch((error: unknown) => ({ error: String(error) }));
    const endedAt = performance.now();
    if ('error' in result) log(`rolling restart failed: ${result.error}`);
    else log(`rolling restart done in ${result.durationMs} ms`);
    await sleep(thirdMs);
    return {
      result,
      loadBeforeS: round1((startedAt - load.startedAt) / 1000),
      loadAfterS: round1((performance.now() - endedAt) / 1000),
    };
  });
  const restartHits = await restartPhase.compare();
  const restartResult = restartPhase.detail.result;
  const restart = {
    http: restartPhase.load,
    hits: restartHits,
    error: 'error' in restartResult ? restartResult.error : null,
    durationMs: 'error' in restartResult ? null : restartResult.durationMs,
    replaced: 'error' in restartResult ? [] : restartResult.replaced,
    /** Seconds of load before the restart began, and after it ended. */
    loadBeforeS: restartPhase.detail.loadBeforeS,
    loadAfterS: restartPhase.detail.loadAfterS,
    replacedAll:
      !('error' in restartResult) &&
      restartResult.replaced.length === beforeRestart.length &&
      beforeRestart.every((w) =>
        restartResult.replaced.some((r) => r.slot === w.slot && r.from === w.id && r.to !== w.id),
      ),
  };

  // ------------------------------------------------------------------ 3. SIGKILL
  app.on('worker:exit', ({ workerId, signal, code, planned, replacedBy }) => {
    if (workerId !== kill?.workerId) return;
    kill.exit = { signal, code, planned };
    kill.replacedBy = replacedBy;
    const how = `${signal ?? `code ${code}`}, ${planned ? 'planned' : 'unplanned'}`;
    log(`worker ${workerId} exited (${how}); replaced by worker ${replacedBy ?? '-'}`);
  });
  app.on('worker:online', ({ workerId }) => {
    if (kill !== undefined && workerId === kill.replacedBy) {
      kill.onlineAfterMs = Math.round(performance.now() - kill.at);
    }
  });
  app.on('worker:ready', ({ workerId }) => {
    if (kill !== undefined && workerId === kill.replacedBy) {
      kill.readyAfterMs = Math.round(performance.now() - kill.at);
    }
  });
  const killPhase = await phase('3 SIGKILL', async (load) => {
    await sleep((phaseSeconds * 1000) / 2);
    const victim = app.workers()[0];
    if (victim?.pid !== undefined) {
      kill = { workerId: victim.id, slot: victim.slot, pid: victim.pid, at: performance.now() };
      log(`SIGKILL worker ${victim.id} (pid ${victim.pid})`);
      process.kill(victim.pid, 'SIGKILL');
    }
    await sleep(Math.max(0, load.startedAt + phaseSeconds * 1000 - performance.now()));
  });
  const killed = kill as Kill | undefined;
  if (killed !== undefined) {
    await waitFor(() => killed.readyAfterMs !== undefined, 15_000, 'the replacement').catch(
      (error: unknown) => log(String(error)),
    );
  }
  const killHits = await killPhase.compare();
  const liveAfterKill = app.workers().map((w) => w.id);
  const killProbe = await probeWorkers(port, liveAfterKill);
  const replacementAnswered =
    killed?.replacedBy !== undefined && killProbe.some((p) => p.worker === killed.replacedBy);
  const sigkill = {
    http: killPhase.load,
    hits: killHits,
    killed:
      killed === undefined
        ? null
        : { workerId: killed.workerId, slot: killed.slot, pid: killed.pid, ...killed.exit },
    replacement:
      killed?.replacedBy === undefined
        ? null
        : {
            workerId: killed.replacedBy,
            online: killed.onlineAfterMs !== undefined,
            ready: killed.readyAfterMs !== undefined,
            onlineAfterMs: killed.onlineAfterMs ?? null,
            readyAfterMs: killed.readyAfterMs ?? null,
            answered: replacementAnswered,
          },
    probe: killProbe,
  };

  // ------------------------------------------------------------------ the last invalidation
  // One last invalidation, from the primary: every live worker, the replacement too, applies it.
  // Delivery is asynchronous: ask the workers until all of them have it, for at most 3 s.
  const finalKey = `final:${Date.now()}`;
  const publishedAt = performance.now();
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
  } while (appliedBy().length < live().length && performance.now() < publishedAt + 3_000);
  const appliedWithinMs = Math.round(performance.now() - publishedAt);
  const missing = live().filter((id) => !appliedBy().includes(id));

  // ------------------------------------------------------------------ the management API
  // Every live worker has reported since the kill's replacement was ready (1 s health interval).
  await sleep(1_500);
  const management = await readManagement(app.management!.url, token);
  const st = management.stats;

  // ------------------------------------------------------------------ the checks
  const noFailures = (f: LoadFigures) => f.non2xx === 0 && f.errors === 0 && f.ok2xx > 0;
  const checks = {
    configNoFailedRequest: noFailures(config.http),
    configAcceptedByAll:
      config.update.accepted &&
      config.update.acks.length === workerCount &&
      config.update.acks.every((a) => a.status === 'accepted'),
    configServedEverywhere: config.everyWorkerOnNew,
    configHitsEqual: config.hits.equal && config.hits.client > 0,
    restartNoFailedRequest: noFailures(restart.http),
    restartReplacedAll: restart.replacedAll,
    restartHitsEqual: restart.hits.equal && restart.hits.client > 0,
    killServed: sigkill.http.ok2xx > 0,
    killReplacementServes:
      sigkill.replacement?.ready === true &&
      sigkill.replacement.answered &&
      killed?.exit?.signal === 'SIGKILL',
    killHitsNotAbove: sigkill.hits.notAbove,
    allWorkersApplied: missing.length === 0 && appliedBy().length > 0,
    statsReported:
      management.statsStatus === 200 &&
      management.healthStatus === 200 &&
      st.workers.length === live().length &&
      st.cluster.healthy === workerCount &&
      st.primary.crashes >= 1 &&
      st.primary.restarts >= workerCount + 1 &&
      st.workers.every((w) => w.callsServed !== null && w.lastReportAt !== null),
  };
  return {
    passed: Object.values(checks).every(Boolean),
    checks,
    workers: workerCount,
    connections,
    phaseSeconds,
    phases: { config, restart, kill: sigkill },
    workersNow: stats.map((w) => ({
      workerId: w.workerId,
      slot: w.slot,
      pid: w.pid,
      config: w.config,
      hits: w.hits,
      peerCalls: w.peerCalls,
      invalidationsApplied: w.invalidations.applied,
    })),
    statsFailed,
    invalidation: {
      key: finalKey,
      liveWorkers: live(),
      appliedBy: appliedBy(),
      missing,
      allApplied: checks.allWorkersApplied,
      appliedWithinMs,
    },
    management,
    workerPids: [...pids],
  };
}

/** The killed worker's story, as the cluster's lifecycle events tell it. */
interface Kill {
  readonly workerId: number;
  readonly slot: number;
  readonly pid: number;
  readonly at: number;
  exit?: { signal: string | null; code: number | null; planned: boolean };
  replacedBy?: number;
  onlineAfterMs?: number;
  readyAfterMs?: number;
}

// ------------------------------------------------------------------ the summary

function printSummary(f: Figures): void {
  const { config, restart, kill } = f.phases;
  const mix = [...new Set(REQUESTS.map((r) => `${r.method} ${r.path.split('?')[0]}`))];
  const out: string[] = [
    '',
    '---------------------------------------- summary ----------------------------------------',
    `${f.workers} workers (one per core); ${f.connections} connections cycling through ${mix.join(', ')}`,
    'failed request: a non-2xx response, a connection error or a timeout',
    '',
  ];

  out.push(heading('1 CONFIG UPDATE under load', config.http), failures(config.http));
  const u = config.update;
  const versions = Object.entries(config.servedVersions)
    .map(([w, byVersion]) => `worker ${w}: ${list(byVersion)}`)
    .join('; ');
  out.push(
    u.to === null
      ? `  update     FAILED: ${u.error}`
      : `  update     v${u.from.version} '${u.from.greeting}' -> v${u.to.version} '${u.to.greeting}' at ${u.atS} s, acknowledged in ${u.tookMs} ms: ${u.acks.map((a) => `worker ${a.workerId} ${a.status}${a.error === null ? '' : ` (${a.error})`}`).join(', ')}`,
    `  GET /      during the load, by config version: ${versions || 'none'}`,
    `  after it   ${config.everyWorkerOnNew ? `every live worker serves v${u.to?.version}` : 'NOT every live worker serves the new value'}; asked over fresh connections:`,
    `             ${probes(config.probe)}`,
    `  by worker  ${perWorker(config.http.byWorker, new Map())}`,
    '',
  );

  out.push(heading('2 ROLLING RESTART under load', restart.http), failures(restart.http));
  const restartRoles = new Map<string, string>();
  for (const r of restart.replaced) {
    if (r.from !== undefined) restartRoles.set(String(r.from), 'old');
    restartRoles.set(String(r.to), 'new');
  }
  out.push(
    restart.error !== null
      ? `  restart    FAILED: ${restart.error}`
      : `  restart    ${restart.replaced.length} workers replaced, one slot at a time, in ${restart.durationMs} ms: ${restart.replaced.map((r) => `slot ${r.slot}: worker ${r.from} -> ${r.to}`).join(', ')}\n             with ${restart.loadBeforeS} s of load before it and ${restart.loadAfterS} s after`,
    `  by worker  ${perWorker(restart.http.byWorker, restartRoles)}`,
    '',
  );

  out.push(heading('3 SIGKILL under load', kill.http), failures(kill.http));
  for (const line of explainKillFailures(kill.http)) out.push(`             ${line}`);
  const k = kill.killed;
  const r = kill.replacement;
  const killRoles = new Map<string, string>();
  if (k !== null) killRoles.set(String(k.workerId), 'killed');
  if (r !== null) killRoles.set(String(r.workerId), 'replacement');
  out.push(
    k === null
      ? '  kill       no worker was killed'
      : `  kill       worker ${k.workerId} (slot ${k.slot}, pid ${k.pid}) exited by ${k.signal ?? `code ${k.code}`}, ${k.planned ? 'planned' : 'unplanned'}\n             ${
          r === null
            ? 'not replaced'
            : `replaced by worker ${r.workerId}: online after ${r.onlineAfterMs ?? '-'} ms, ready (listening) after ${r.readyAfterMs ?? '-'} ms`
        }`,
    `  after it   ${r === null ? 'no replacement' : r.answered ? 'the replacement serves' : 'the replacement DID NOT answer'}; asked over fresh connections:`,
    `             ${probes(kill.probe)}`,
    `  by worker  ${perWorker(kill.http.byWorker, killRoles)}`,
    '             (open connections stay with the worker that has them: the replacement gets new ones)',
    '',
  );

  // The hits table: a pair of columns per phase.
  out.push(
    "HITS       per route and phase: the increments of the store 'hits' (held by the primary; a worker",
    "           increments once a 2xx response is written: its 'finish' event) against the 2xx",
    '           responses autocannon received (counted by their x-route header)',
  );
  const phases = [
    ['1 config', config.hits],
    ['2 restart', restart.hits],
    ['3 SIGKILL', kill.hits],
  ] as const;
  const routes = [...new Set(phases.flatMap(([, h]) => h.routes.map((x) => x.route)))].sort();
  const rows: string[][] = [
    ['', ...phases.flatMap(([name]) => [`${name}: store`, 'client'])],
    ...routes.map((route) => [
      route,
      ...phases.flatMap(([, h]) => {
        const x = h.routes.find((y) => y.route === route);
        return [String(x?.store ?? 0), String(x?.client ?? 0)];
      }),
    ]),
    ['total', ...phases.flatMap(([, h]) => [String(h.store), String(h.client)])],
  ];
  out.push(...table(rows).map((line) => `    ${line}`));
  const verdict = (h: HitsComparison) =>
    h.equal
      ? 'equal on every route'
      : `NOT EQUAL (store ${h.store - h.client >= 0 ? '+' : ''}${h.store - h.client}${h.client === h.autocannon2xx ? '' : `; autocannon counted ${h.autocannon2xx} 2xx`})`;
  out.push(
    `           1 config: ${verdict(config.hits)}`,
    `           2 restart: ${verdict(restart.hits)}${restart.hits.equal ? ', every worker replaced on the way (the counts live in the primary)' : ''}`,
  );
  const lost = kill.hits.client - kill.hits.store;
  out.push(
    kill.hits.equal
      ? '           3 SIGKILL: equal on every route: the killed worker had no increment in flight this time'
      : kill.hits.notAbove
        ? `           3 SIGKILL: the store is ${lost} below: responses the killed worker had written (the client got them) whose increment had not reached the primary yet`
        : '           3 SIGKILL: the store is ABOVE the client on some route: responses counted that no client received (a bug)',
    '           (1 and 2 must be equal; in 3, a SIGKILL can lose increments, never add one: store <= client)',
  );
  const failedIncrements = phases.reduce((n, [, h]) => n + h.failedIncrements, 0);
  if (failedIncrements > 0) out.push(`           increments that failed: ${failedIncrements}`);
  for (const [name, h] of phases) {
    if (h.statsFailed.length > 0)
      out.push(`           ${name}: stats failed on ${h.statsFailed.join(', ')}`);
  }
  out.push('');

  const inv = f.invalidation;
  out.push(
    `INVAL      '${inv.key}', published by the primary at the end, applied by ${inv.appliedBy.length} of ${inv.liveWorkers.length} live workers [${inv.appliedBy.join(', ')}] within ${inv.appliedWithinMs} ms${inv.missing.length > 0 ? `; MISSING on ${inv.missing.join(', ')}` : ''}`,
  );
  for (const failure of f.statsFailed) out.push(`           stats failed on ${failure}`);
  out.push('WORKERS    at the end, as they report themselves (stats):');
  for (const w of f.workersNow) {
    out.push(
      `           worker ${w.workerId} (slot ${w.slot}, pid ${w.pid}): config v${w.config.version} '${w.config.greeting}'; hits increments: ${w.hits.applied} applied, ${w.hits.failed} failed;\n             peer hellos answered: ${w.peerCalls.answered}; invalidations applied: ${w.invalidationsApplied}`,
    );
  }
  out.push(...statsLines(f.management));
  out.push(
    '',
    ...checkLines(f.checks),
    `           ${f.passed ? 'PASSED' : 'FAILED'}`,
    '-----------------------------------------------------------------------------------------',
  );
  console.log(out.join('\n'));
}

/** What the management API reported at the end. */
function statsLines(m: Figures['management']): string[] {
  const s = m.stats;
  const p = s.primary;
  const c = s.cluster;
  const mb = (n: number | null) => (n === null ? '-' : `${(n / 1024 / 1024).toFixed(0)} MiB`);
  return [
    `STATS      GET /stats at the end (${m.url}), GET /health ${m.healthStatus} '${m.health.status}':`,
    `           primary pid ${p.pid}, up ${(p.uptimeMs / 1000).toFixed(1)} s: ${p.requests ?? '-'} requests counted, ${p.restarts} restarts, ${p.crashes} crashes, ${p.workersSpawned} workers spawned`,
    `           cluster: ${c.workers} workers, ${c.active} active, ${c.healthy} healthy (min ${c.min}, max ${c.max ?? '-'})`,
    ...s.workers.map(
      (w) =>
        `           slot ${w.slot} worker ${w.workerId} (pid ${w.pid}): ${w.state}, ${w.healthy ? 'healthy' : 'UNHEALTHY'}, up ${(w.uptimeMs / 1000).toFixed(1)} s, ${w.restarts} restarts, rss ${mb(w.rssBytes)}, event loop p99 ${w.eventLoopDelayMs?.p99 ?? '-'} ms, ${w.callsServed ?? '-'} calls served, ${w.requests ?? '-'} requests`,
    ),
  ];
}

/** The checks, one line per phase. */
function checkLines(checks: Record<string, boolean>): string[] {
  const groups = [
    ['1 config', 'config'],
    ['2 restart', 'restart'],
    ['3 SIGKILL', 'kill'],
    ['stats', 'stats'],
    ['end', ''],
  ] as const;
  const lines: string[] = [];
  const done = new Set<string>();
  for (const [label, prefix] of groups) {
    const names = Object.keys(checks).filter((n) => !done.has(n) && n.startsWith(prefix));
    for (const n of names) done.add(n);
    if (names.length === 0) continue;
    const items = names.map((n) => `${n} ${checks[n] ? 'ok' : 'FAILED'}`).join(', ');
    const head = lines.length === 0 ? 'CHECKS' : '';
    lines.push(`${head.padEnd(11)}${label}: ${items}`);
  }
  return lines;
}

/** Why the requests of the SIGKILL phase failed, by error code. */
function explainKillFailures(h: LoadFigures): string[] {
  const lines: string[] = [];
  const resets = h.errorsByCode.ECONNRESET ?? 0;
  const timeouts = h.errorsByCode['request timed out'] ?? 0;
  const others = h.errors - resets - timeouts;
  if (resets > 0) {
    lines.push(`ECONNRESET: the requests in flight on the killed worker's connections (expected)`);
  }
  if (timeouts > 0) {
    lines.push(
      'timed out: a connection that reached the worker as it died and was never answered nor',
      "closed (Node's cluster does the same without clusterbus); the client gave up after 3 s",
    );
  }
  if (others > 0 || h.non2xx > 0) lines.push('other failures: not expected, see above');
  if (lines.length > 0) lines.push('these failures belong to this phase only');
  return lines;
}

function heading(title: string, h: LoadFigures): string {
  return `${title.padEnd(30)} ${h.seconds.toFixed(1)} s, ${h.responses} responses (${h.reqPerS} req/s), latency p50 ${h.latencyMs.p50} ms, p99 ${h.latencyMs.p99} ms`;
}

function failures(h: LoadFigures): string {
  return `  failed     ${h.non2xx + h.errors} (non-2xx: ${list(h.non2xxByStatus)}; errors: ${list(h.errorsByCode)})`;
}

function probes(answers: readonly ProbeAnswer[]): string {
  const seen = new Map<number, ProbeAnswer>();
  for (const a of answers) seen.set(a.worker, a);
  return (
    [...seen.values()]
      .map((a) => `worker ${a.worker} -> ${a.status} '${a.greeting}' (v${a.configVersion})`)
      .join(', ') || 'no answer'
  );
}

function perWorker(byWorker: Record<string, number>, roles: ReadonlyMap<string, string>): string {
  return Object.entries(byWorker)
    .map(([w, n]) => `worker ${w}${roles.has(w) ? ` (${roles.get(w)})` : ''}: ${n}`)
    .join(', ');
}

function list(counts: Record<string, number>): string {
  return (
    Object.entries(counts)
      .map(([what, n]) => `${n} x ${what}`)
      .join(', ') || 'none'
  );
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

function round1(n: number): number {
  return Math.round(n * 10) / 10;
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
