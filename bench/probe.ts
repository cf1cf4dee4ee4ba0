/**
 * A quick probe of one case (pipelined primary -> worker echo) for measuring a change:
 * raw process.send vs clusterbus, interleaved rounds. The full suite is bench/run.ts.
 * Usage: node --import tsx bench/probe.ts [payloadBytes] [calls] [rounds]
 */
import cluster from 'node:cluster';
import { z } from 'zod';
import { connect, defineContract, startCluster } from '../src/index.js';
import { type ObjectPayload, objectTemplate } from './shape.js';

const Obj = z.object({
  seq: z.number().int(),
  id: z.string(),
  name: z.string(),
  score: z.number(),
  items: z.array(z.object({ k: z.string(), v: z.number(), s: z.string() })),
});
const objectShape = process.env.PROBE_SHAPE === 'object';
const Str = z.object({ s: z.string() });
const contract = defineContract({
  methods: { echo: objectShape ? { input: Obj, output: Obj } : { input: Str, output: Str } },
});

if (cluster.isPrimary) {
  const size = Number(process.argv[2] ?? 64);
  const calls = Number(process.argv[3] ?? 100_000);
  const rounds = Number(process.argv[4] ?? 3);
  const inflight = 256;
  const s = 'x'.repeat(Math.max(0, size - 8));
  const template = objectTemplate(size);
  let seq = 0;
  const arg = (): { s: string } | ObjectPayload =>
    objectShape ? { ...template, seq: ++seq } : { s };
  const len = (r: unknown) =>
    objectShape ? (r as ObjectPayload).items.length : (r as { s: string }).s.length;
  const want = objectShape ? template.items.length : s.length;

  const sequential = process.env.PROBE_SEQ !== undefined;
  const { readFileSync } = await import('node:fs');
  /** CPU time (user+system) of a process in µs, from /proc (clock ticks of 10 ms: use many calls). */
  const cpuOf = (pid: number) => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10_000;
  };
  const cpuReport: string[] = [];
  async function withCpu(label: string, pid: number, run: () => Promise<number>): Promise<number> {
    const p0 = process.cpuUsage();
    const w0 = cpuOf(pid);
    const rate = await run();
    const p1 = process.cpuUsage(p0);
    const w1 = cpuOf(pid);
    cpuReport.push(
      `${label}: primary ${((p1.user + p1.system) / calls).toFixed(2)} µs/call, worker ${((w1 - w0) / calls).toFixed(2)} µs/call`,
    );
    return rate;
  }
  async function pipelined(call: () => Promise<unknown>): Promise<number> {
    if (sequential) {
      const lat: number[] = [];
      for (let i = 0; i < calls; i++) {
        const t = performance.now();
        await call();
        lat.push(performance.now() - t);
      }
      lat.sort((a, b) => a - b);
      return 1000 / lat[Math.floor(lat.length / 2)]!; // 1/p50, as a rate
    }
    let issued = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        while (issued < calls) {
          issued++;
          await call();
        }
      }),
    );
    return calls / ((performance.now() - t0) / 1000);
  }

  async function raw(): Promise<number> {
    cluster.setupPrimary({
      exec: new URL(import.meta.url).pathname,
      execArgv: process.execArgv,
      args: ['raw'],
    });
    const w = cluster.fork({ PROBE_MODE: 'raw' });
    await new Promise((r) => w.once('message', r));
    let id = 0;
    const pending = new Map<number, (v: unknown) => void>();
    w.on('message', (m: { id: number; r: { s: string } }) => {
      const f = pending.get(m.id);
      pending.delete(m.id);
      f?.(m.r);
    });
    const rate = await withCpu('raw', w.process.pid!, () =>
      pipelined(
        () =>
          new Promise((resolve) => {
            const i = ++id;
            pending.set(i, resolve);
            w.send({ id: i, m: 'echo', a: arg() });
          }),
      ),
    );
    w.kill();
    return rate;
  }

  async function bus(): Promise<number> {
    const app = await startCluster({
      contract,
      workers: 1,
      exec: new URL(import.meta.url).pathname,
      execArgv: process.execArgv,
      env: { PROBE_MODE: 'bus' },
    });
    const id = app.workers()[0]!.id;
    const rate = await withCpu('bus', app.workers()[0]!.pid!, () =>
      pipelined(async () => {
        const r = await app.bus.call(id, 'echo', arg() as never);
        if (len(r) !== want) throw new Error('bad reply');
      }),
    );
    await app.close();
    return rate;
  }

  const results: Record<string, number[]> = { raw: [], bus: [] };
  for (let i = 0; i < rounds; i++) {
    if (!process.env.SKIP_RAW) results.raw!.push(await raw());
    results.bus!.push(await bus());
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(cpuReport.join('\n'));
  console.log(
    `payload ${size} B, ${calls} calls x ${rounds} rounds: raw ${med(results.raw!).toFixed(0)}/s, clusterbus ${med(results.bus!).toFixed(0)}/s, ratio ${(med(results.bus!) / med(results.raw!)).toFixed(2)}`,
    JSON.stringify(results, (_k, v) => (typeof v === 'number' ? Math.round(v) : v)),
  );
} else if (process.env.PROBE_MODE === 'raw') {
  process.on('message', (m: { id: number; a: unknown }) => process.send!({ id: m.id, r: m.a }));
  process.send!('ready');
} else {
  const bus = await connect(contract);
  bus.handle('echo', (x) => x);
}
