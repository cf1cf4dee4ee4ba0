/**
 * `npm run demo:mesh`: three NATS servers (a cluster, R3 buckets) and three nodes of an HTTP app
 * (each a primary with 2 workers, on its own port). HTTP load at all three; during it a config
 * update (from node a), node c killed (SIGKILL, once its load has ended) and one NATS server
 * killed. Then the summary: requests per node, failed requests, the shared hit counter against
 * the 2xx count, the config version on every worker of every node. Exits 1 if a check fails.
 * DEMO_SECONDS sets the length of the load (default 8).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, NatsFixture } from '../../test/nats/servers.js';
import { startLoad } from '../http-cluster/load.js';

const SECONDS = Number(process.env.DEMO_SECONDS ?? 8);
const NODE_APP = fileURLToPath(new URL('./node.ts', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class AppNode {
  private next = 1;
  private readonly pending = new Map<
    number,
    (v: { ok: boolean; value?: unknown; error?: string }) => void
  >();
  readonly exited: Promise<void>;
  constructor(
    readonly name: string,
    readonly port: number,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((r) => child.once('exit', () => r()));
    child.on('message', (m: { id?: number; ok: boolean; value?: unknown; error?: string }) => {
      if (m.id !== undefined) this.pending.get(m.id)?.(m);
    });
  }
  static async start(name: string, urls: string[]): Promise<AppNode> {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', NODE_APP], {
      env: { ...process.env, NATS_URLS: urls.join(','), NODE: name, PORT: String(port) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      child.on('message', (m: { ready?: boolean }) => m.ready && resolve());
      child.once('exit', () => reject(new Error(`node ${name} exited before ready`)));
    });
    return new AppNode(name, port, child);
  }
  async run(op: string, args: object = {}): Promise<unknown> {
    const id = this.next++;
    const r = await new Promise<{ ok: boolean; value?: unknown; error?: string }>((resolve) => {
      this.pending.set(id, resolve);
      this.child.send({ id, op, args });
    });
    if (!r.ok) throw new Error(`${this.name}: ${op}: ${r.error}`);
    return r.value;
  }
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.run('close').catch(() => {});
    await this.exited;
  }
}

const fixture = new NatsFixture();
const nodes: AppNode[] = [];
let failed = false;
try {
  const servers = await fixture.cluster(3);
  const urls = servers.map((s) => s.url);
  console.log(`NATS cluster: ${urls.join(', ')}`);
  for (const [i, name] of ['a', 'b', 'c'].entries()) {
    nodes.push(await AppNode.start(name, [...urls.slice(i), ...urls.slice(0, i)]));
  }
  const [a, b, c] = nodes as [AppNode, AppNode, AppNode];
  console.log(
    `nodes: ${nodes.map((n) => `${n.name} on :${n.port}`).join(', ')}; load for ${SECONDS} s`,
  );
  const load = (n: AppNode) =>
    startLoad({
      port: n.port,
      connections: 8,
      requests: [{ method: 'GET', path: '/' }],
      maxSeconds: SECONDS * 4 + 30,
      timeoutS: 30,
    });
  const loads = { a: load(a), b: load(b), c: load(c) };
  await sleep((SECONDS * 1000) / 4);
  const update = (await a.run('update', { greeting: 'bonjour' })) as {
    version: number;
    accepted: boolean;
    workers: number;
  };
  console.log(
    `config update from a: version ${update.version}, accepted by ${update.workers} workers: ${update.accepted}`,
  );
  await sleep((SECONDS * 1000) / 4);
  const figuresC = await loads.c.finish();
  c.child.kill('SIGKILL');
  console.log('node c killed (SIGKILL), after its load');
  await sleep(300);
  await servers[2]!.stop('SIGKILL');
  console.log(`NATS server ${servers[2]!.name} killed`);
  await sleep((SECONDS * 1000) / 2);
  const [figuresA, figuresB] = await Promise.all([loads.a.finish(), loads.b.finish()]);
  const per = { a: figuresA, b: figuresB, c: figuresC };
  const ok2xx = figuresA.ok2xx + figuresB.ok2xx + figuresC.ok2xx;
  const failedRequests = Object.values(per).reduce((n, f) => n + f.non2xx + f.errors, 0);
  const hits = (await a.run('hits')) as number;
  const versions = (await b.run('versions')) as Array<{
    node: string;
    workerId: number;
    version: number;
  }>;
  console.log('\n| node | 2xx | failed | req/s |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, f] of Object.entries(per)) {
    console.log(`| ${name} | ${f.ok2xx} | ${f.non2xx + f.errors} | ${f.reqPerS.toFixed(0)} |`);
  }
  console.log(`\nfailed requests: ${failedRequests}`);
  console.log(`shared hit counter: ${hits}; 2xx responses: ${ok2xx}; equal: ${hits === ok2xx}`);
  console.log(
    `config version on every worker: ${versions.map((v) => `${v.node}:${v.workerId}=v${v.version}`).join(' ')}`,
  );
  const checks = {
    noFailedRequest: failedRequests === 0,
    hitsEqual2xx: hits === ok2xx,
    configEverywhere: versions.length === 4 && versions.every((v) => v.version === update.version),
    everyNodeServed: Object.values(per).every((f) => f.ok2xx > 0),
  };
  failed = !Object.values(checks).every(Boolean);
  console.log(
    `DEMO_RESULT ${JSON.stringify({ checks, hits, ok2xx, failedRequests, perNode: { a: figuresA.ok2xx, b: figuresB.ok2xx, c: figuresC.ok2xx }, configVersion: update.version })}`,
  );
} catch (error) {
  console.error(error);
  failed = true;
} finally {
  await Promise.all(nodes.map((n) => n.close()));
  await fixture.close();
}
process.exit(failed ? 1 : 0);
