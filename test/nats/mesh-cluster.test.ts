/**
 * The multi-host test: three nodes (a, b, c: three primaries, each its own process tree with 2
 * workers) over a 3-server NATS cluster (routes, JetStream R3 buckets), then its faults in order:
 * one NATS server killed, a node partitioned (its only server stopped), a node's primary
 * SIGKILLed, every server restarted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshNodeProc } from './nodes.js';
import { NATS_SERVER, NatsFixture, type NatsServer } from './servers.js';

const fixture = new NatsFixture();
let servers: NatsServer[];
const nodes: Record<string, MeshNodeProc> = {};
const workers: Record<string, number[]> = {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every server URL, starting with server `i` (so the nodes spread over the servers). */
function urlsFrom(i: number): string[] {
  const urls = servers.map((s) => s.url);
  return [...urls.slice(i), ...urls.slice(0, i)];
}

async function untilOk<T>(
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  ms: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${ms} ms; last ${JSON.stringify(v)}`);
    await sleep(50);
  }
}

/** Runs `incr` on every worker of every live node (n per worker) and resolves when all are done. */
async function incrementEverywhere(key: string, n: number, names: string[]): Promise<number> {
  const runs = names.flatMap((name) =>
    workers[name]!.map((w) => nodes[name]!.call(w, 'incr', { key, n, c: 4 }, 120_000)),
  );
  const outcomes = await Promise.all(runs);
  for (const o of outcomes) expect(o, JSON.stringify(o)).toMatchObject({ ok: true });
  return runs.length * n;
}

describe.skipIf(NATS_SERVER === undefined)('natsMesh over a 3-server cluster (R3)', () => {
  beforeAll(async () => {
    servers = await fixture.cluster(3);
    const started = await Promise.all(
      ['a', 'b', 'c'].map((n, i) => MeshNodeProc.start(n, urlsFrom(i))),
    );
    for (const n of started) {
      nodes[n.name] = n;
      workers[n.name] = await n.value<number[]>('workers');
    }
    await untilOk(
      () => nodes.a!.value<unknown[]>('nodes'),
      (v) => v.length === 3,
      10_000,
      'a sees 3 nodes',
    );
    await untilOk(
      () => nodes.c!.value<unknown[]>('nodes'),
      (v) => v.length === 3,
      10_000,
      'c sees 3 nodes',
    );
  }, 120_000);
  afterAll(async () => {
    await Promise.all(Object.values(nodes).map((n) => n.close()));
    await fixture.close();
  }, 60_000);

  describe('across hosts', () => {
    it('calls reach a worker of every other node', async () => {
      for (const [from, to] of [
        ['a', 'b'],
        ['b', 'c'],
        ['c', 'a'],
      ] as const) {
        const r = await nodes[from]!.call({ node: to, worker: workers[to]![1] }, 'whoami');
        expect(r).toMatchObject({ ok: true, value: { node: to, workerId: workers[to]![1] } });
      }
    });

    it('callAll reaches every worker of every node', async () => {
      const rs = await nodes.b!.value<Array<{ node: string; status: string }>>('callAll', {
        method: 'whoami',
      });
      expect(rs.map((r) => r.node).sort()).toEqual(['a', 'a', 'b', 'b', 'c', 'c']);
      expect(rs.every((r) => r.status === 'fulfilled')).toBe(true);
    });

    it('publish reaches every worker of every node', async () => {
      await nodes.c!.value('publish', { key: 'multi-host' });
      for (const name of ['a', 'b', 'c']) {
        for (const w of workers[name]!) {
          await untilOk(
            async () => ((await nodes[name]!.call(w, 'received')) as { value: string[] }).value,
            (got) => got.filter((k) => k === 'multi-host').length === 1,
            5_000,
            `worker ${w} of ${name} gets the event`,
          );
        }
      }
    });

    it('increments from every node end exact (R3 bucket, this 2.9 server: stream-wide compare-and-set)', async () => {
      const total = await incrementEverywhere('exact', 50, ['a', 'b', 'c']);
      for (const name of ['a', 'b', 'c']) {
        await untilOk(
          () => nodes[name]!.value('get', { key: 'exact' }),
          (v) => v === total,
          5_000,
          `${name} reads ${total}`,
        );
      }
    }, 120_000);

    it('ifRevision is compare-and-set on the KV revision', async () => {
      const rev = await nodes.a!.value<number>('set', { key: 'cas', value: 1 });
      expect(
        await nodes.b!.value<number>('set', { key: 'cas', value: 2, ifRevision: rev }),
      ).toBeGreaterThan(rev);
      const stale = await nodes.c!.run('set', { key: 'cas', value: 3, ifRevision: rev });
      expect(stale).toMatchObject({ ok: false, code: 'CONFLICT' });
    });

    it('a lock contended from every node never has two holders (fencing tokens increase)', async () => {
      const runs = ['a', 'b', 'c'].flatMap((name) =>
        workers[name]!.map((w) =>
          nodes[name]!.call(
            w,
            'lockLoop',
            { name: 'critical', n: 4, holdMs: 15, ttlMs: 10_000 },
            120_000,
          ),
        ),
      );
      const holds = (await Promise.all(runs)).flatMap((o) => {
        expect(o).toMatchObject({ ok: true });
        return (o as { value: Array<{ token: number; from: number; to: number }> }).value;
      });
      expect(holds).toHaveLength(24);
      holds.sort((x, y) => x.token - y.token);
      for (let i = 1; i < holds.length; i++) {
        expect(holds[i]!.token).toBeGreaterThan(holds[i - 1]!.token);
        expect(holds[i]!.from).toBeGreaterThanOrEqual(holds[i - 1]!.to);
      }
    }, 120_000);
  });

  describe('config', () => {
    it('an update on one node reaches every worker of every node, acknowledged by each', async () => {
      const result = await nodes.b!.value<{
        version: number;
        accepted: boolean;
        workers: Array<{ node: string; workerId: number; status: string }>;
      }>('configUpdate', { greeting: 'hi from b' });
      expect(result.accepted).toBe(true);
      expect(result.workers.map((w) => `${w.node}:${w.workerId}`).sort()).toEqual(
        ['a', 'b', 'c'].flatMap((n) => workers[n]!.map((w) => `${n}:${w}`)).sort(),
      );
      for (const name of ['a', 'b', 'c']) {
        for (const w of workers[name]!) {
          const c = await nodes[name]!.call(w, 'config');
          expect(c).toMatchObject({
            ok: true,
            value: { version: result.version, greeting: 'hi from b' },
          });
        }
      }
      // A second update, from another node, takes the next version.
      const next = await nodes.c!.value<{ version: number }>('configUpdate', {
        greeting: 'hi from c',
      });
      expect(next.version).toBe(result.version + 1);
    }, 60_000);

    it('a node that joins later starts on the current version', async () => {
      const late = await MeshNodeProc.start('late', urlsFrom(1));
      try {
        const ids = await late.value<number[]>('workers');
        for (const w of ids) {
          const c = await late.call(w, 'config');
          expect(c).toMatchObject({ ok: true, value: { greeting: 'hi from c' } });
        }
      } finally {
        await late.close();
      }
    }, 60_000);
  });

  describe('faults', () => {
    it('one NATS server killed: increments carry on exact, calls work, watches resume', async () => {
      expect(await nodes.b!.value('watchStart', { key: 'watched' })).toBe(true);
      await nodes.a!.value('set', { key: 'watched', value: 1 });
      const incr = incrementEverywhere('during-kill', 40, ['a', 'b', 'c']);
      await sleep(300);
      await servers[0]!.stop('SIGKILL');
      const total = await incr;
      for (const name of ['a', 'b', 'c']) {
        await untilOk(
          () => nodes[name]!.value('get', { key: 'during-kill' }),
          (v) => v === total,
          10_000,
          `${name} reads ${total}`,
        );
      }
      const r = await nodes.a!.call({ node: 'c', worker: workers.c![0] }, 'add', { a: 1, b: 1 });
      expect(r).toMatchObject({ ok: true, value: 2 });
      await nodes.c!.value('set', { key: 'watched', value: 2 });
      const seen = await untilOk(
        () => nodes.b!.value<Array<{ value: unknown }>>('watchSeen', { key: 'watched' }),
        (v) => v.some((c) => c.value === 2),
        15_000,
        'the watch on b sees the write after the kill',
      );
      expect(seen.map((c) => c.value)).toEqual([1, 2]);
      await servers[0]!.start();
      await Promise.all(servers.map((s) => s.healthy()));
    }, 120_000);

    it('a node partitioned (its only server stopped) loses its lease once the TTL has passed', async () => {
      const e = await MeshNodeProc.start('e', [servers[1]!.url]);
      nodes.e = e;
      const ttlMs = 3_000;
      const held = await e.value<{ token: number; at: number }>('lock', {
        name: 'partition',
        ttlMs,
        waitMs: 1_000,
      });
      await servers[1]!.stop('SIGKILL');
      const stoppedAt = Date.now();
      const taken = await nodes.a!.value<{ token: number; at: number }>(
        'lock',
        { name: 'partition', ttlMs, waitMs: 20_000 },
        30_000,
      );
      expect(taken.token).toBeGreaterThan(held.token);
      // Not before the holder's lease was over (it started before `held.at`), and soon after.
      expect(taken.at).toBeGreaterThanOrEqual(held.at + ttlMs - 50);
      expect(taken.at - stoppedAt).toBeLessThan(ttlMs + 5_000);
      await nodes.a!.value('unlock', { name: 'partition' });
      await servers[1]!.start();
      await Promise.all(servers.map((s) => s.healthy()));
      await e.close();
      delete nodes.e;
    }, 90_000);

    it("a node's primary SIGKILLed: calls to its workers settle fast, new ones are refused at once, others carry on", async () => {
      const target = { node: 'c', worker: workers.c![0] };
      const inFlight = nodes.a!.call(target, 'sleep', { ms: 60_000 }, 30_000);
      await sleep(200);
      const killedAt = Date.now();
      nodes.c!.kill();
      const r = await inFlight;
      const settledMs = Date.now() - killedAt;
      expect(r).toMatchObject({ ok: false });
      expect(['TARGET_EXITED', 'NO_TARGET']).toContain((r as { code: string }).code);
      expect(settledMs).toBeLessThan(10_000);
      console.log(
        `[mesh] a call to a SIGKILLed node's worker settled ${settledMs} ms after the kill (${(r as { code: string }).code})`,
      );
      const next = await nodes.a!.call(target, 'whoami');
      expect(next).toMatchObject({ ok: false, code: 'NO_TARGET' });
      expect((next as { elapsedMs: number }).elapsedMs).toBeLessThan(100);
      const ok = await nodes.a!.call({ node: 'b', worker: workers.b![0] }, 'add', { a: 2, b: 2 });
      expect(ok).toMatchObject({ ok: true, value: 4 });
      await nodes.c!.exited;
      delete nodes.c;
    }, 60_000);

    it('every server restarted: the nodes reconnect and calls work again', async () => {
      const inFlight = nodes.a!.call(
        { node: 'b', worker: workers.b![1] },
        'sleep',
        { ms: 1_000 },
        30_000,
      );
      await sleep(100);
      await Promise.all(servers.map((s) => s.stop('SIGKILL')));
      await sleep(500);
      await Promise.all(servers.map((s) => s.start()));
      const during = await inFlight;
      console.log(
        `[mesh] a call in flight during the restart of every server: ${JSON.stringify(during)}`,
      );
      await untilOk(
        () => nodes.a!.call({ node: 'b', worker: workers.b![0] }, 'add', { a: 3, b: 4 }, 2_000),
        (o) => o.ok,
        30_000,
        'a call from a to b after the restart',
      );
      const incr = await nodes.b!.value<number>('increment', { key: 'after-restart' }, 30_000);
      expect(incr).toBe(1);
    }, 90_000);
  });
});
