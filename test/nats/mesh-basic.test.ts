/**
 * The mesh over one nats-server: nodes a and b (each its own process tree with 2 workers), and
 * for a few cases more nodes (not local first, another prefix, a drifted contract). Calls across
 * nodes and their errors, 'any', callAll, publish, nodes(), the payload limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshNodeProc } from './nodes.js';
import { NATS_SERVER, NatsFixture } from './servers.js';

const fixture = new NatsFixture();
let url: string;
let a: MeshNodeProc;
let b: MeshNodeProc;
let workersB: number[];

describe.skipIf(NATS_SERVER === undefined)('natsMesh over one server', () => {
  beforeAll(async () => {
    url = (await fixture.single()).url;
    [a, b] = await Promise.all([MeshNodeProc.start('a', [url]), MeshNodeProc.start('b', [url])]);
    workersB = await b.value<number[]>('workers');
    // Each has heard the other.
    for (let i = 0; i < 100; i++) {
      const nodes = await a.value<Array<{ node: string }>>('nodes');
      if (nodes.length === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 90_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await fixture.close();
  }, 60_000);

  describe('calls across nodes', () => {
    it('reach worker { node, worker } on the other node, from its primary and from a worker', async () => {
      const r = await a.call({ node: 'b', worker: workersB[0] }, 'whoami');
      expect(r).toMatchObject({ ok: true, value: { node: 'b', workerId: workersB[0] } });
      const workersA = await a.value<number[]>('workers');
      const relayed = await a.call(workersA[0], 'relay', {
        target: { node: 'b', worker: workersB[1] },
        method: 'add',
        input: { a: 2, b: 3 },
      });
      expect(relayed).toMatchObject({ ok: true, value: 5 });
    });

    it('a node calling itself by name stays local', async () => {
      const workersA = await a.value<number[]>('workers');
      const r = await a.call({ node: 'a', worker: workersA[1] }, 'whoami');
      expect(r).toMatchObject({ ok: true, value: { node: 'a', workerId: workersA[1] } });
    });

    it('keep superjson fidelity (Date, Map, Set, BigInt, undefined)', async () => {
      expect(await a.value('fidelity', { target: { node: 'b', worker: workersB[0] } })).toBe(true);
    });

    it('reject as on one host: REMOTE with the code, BAD_INPUT, BAD_OUTPUT', async () => {
      const t = { node: 'b', worker: workersB[0] };
      expect(await a.call(t, 'fail', { message: 'boom', code: 'CONFLICT' })).toMatchObject({
        ok: false,
        code: 'REMOTE',
        causeCode: 'CONFLICT',
      });
      expect(await a.call(t, 'add', { a: 'x', b: 1 })).toMatchObject({
        ok: false,
        code: 'BAD_INPUT',
      });
      expect(await a.call(t, 'badOutput')).toMatchObject({ ok: false, code: 'BAD_OUTPUT' });
    });

    it('NO_TARGET for an unknown worker of a node, and for an unknown node, at once', async () => {
      const r1 = await a.call({ node: 'b', worker: 999 }, 'whoami');
      expect(r1).toMatchObject({ ok: false, code: 'NO_TARGET' });
      const r2 = await a.call({ node: 'nobody', worker: 1 }, 'whoami');
      expect(r2).toMatchObject({ ok: false, code: 'NO_TARGET' });
      expect((r2 as { elapsedMs: number }).elapsedMs).toBeLessThan(2_000);
    });

    it('TIMEOUT, and the remote handler is aborted', async () => {
      const t = { node: 'b', worker: workersB[1] };
      const r = await a.call(t, 'sleep', { ms: 10_000 }, 300);
      expect(r).toMatchObject({ ok: false, code: 'TIMEOUT' });
      let last: unknown;
      for (let i = 0; i < 100 && last == null; i++) {
        last = (await b.call(workersB[1], 'lastAbort')) as unknown;
        last = (last as { value: unknown }).value;
        if (last == null) await new Promise((r) => setTimeout(r, 20));
      }
      expect(last).not.toBeNull();
    });

    it('an AbortSignal rejects ABORTED and reaches the remote handler', async () => {
      const target = { node: 'b', worker: workersB[0] };
      const before = (await b.call(workersB[0], 'lastAbort')) as { value: unknown };
      expect(await a.value('abort', { target, afterMs: 200 })).toBe('ABORTED');
      let last: unknown = before.value;
      for (let i = 0; i < 100 && last === before.value; i++) {
        last = ((await b.call(workersB[0], 'lastAbort')) as { value: unknown }).value;
        if (last === before.value) await new Promise((r) => setTimeout(r, 20));
      }
      expect(last).toBe('ABORTED');
    });

    it("refuses a payload over the server's max_payload with PAYLOAD_TOO_LARGE, before sending", async () => {
      const r = await a.run('big', {
        target: { node: 'b', worker: workersB[0] },
        bytes: 1_100_000,
      });
      expect(r).toMatchObject({ ok: false, code: 'PAYLOAD_TOO_LARGE' });
      const ok = await a.run('big', { target: { node: 'b', worker: workersB[0] }, bytes: 1_000 });
      expect(ok.ok).toBe(true);
    });

    it('refuses an event over max_payload with PAYLOAD_TOO_LARGE before delivering it anywhere', async () => {
      const r = await a.run('publishBig');
      expect(r).toMatchObject({ ok: false, code: 'PAYLOAD_TOO_LARGE' });
      await new Promise((r) => setTimeout(r, 200));
      const workersA = await a.value<number[]>('workers');
      for (const w of workersA) {
        const got = ((await a.call(w, 'received')) as { value: string[] }).value;
        expect(got.some((k) => k.length > 1000)).toBe(false);
      }
    });

    it('leaves nothing pending', async () => {
      expect(await a.value('pending')).toBe(0);
      expect(await b.value('pending')).toBe(0);
    });
  });

  describe("'any' and callAll", () => {
    it("'any' is local first: every call lands on this node", async () => {
      const nodes = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const r = await a.call('any', 'whoami');
        nodes.add((r as { value: { node: string } }).value.node);
      }
      expect([...nodes]).toEqual(['a']);
    });

    it("with localFirst: false, 'any' is the queue group of the whole mesh", async () => {
      const c = await MeshNodeProc.start('c', [url], { LOCAL_FIRST: '0' });
      try {
        const nodes = new Set<string>();
        for (let i = 0; i < 60 && nodes.size < 3; i++) {
          const r = await c.call('any', 'whoami');
          nodes.add((r as { value: { node: string } }).value.node);
        }
        expect([...nodes].sort()).toEqual(['a', 'b', 'c']);
      } finally {
        await c.close();
      }
    }, 60_000);

    it("callAll's default scope is the mesh: every worker of every node, with its node", async () => {
      const rs = await a.value<
        Array<{ workerId: number; node: string; status: string; value: { node: string } }>
      >('callAll', { method: 'whoami' });
      expect(rs).toHaveLength(4);
      expect(rs.every((r) => r.status === 'fulfilled' && r.value.node === r.node)).toBe(true);
      expect(rs.filter((r) => r.node === 'b').map((r) => r.workerId)).toEqual(workersB);
      const local = await a.value<Array<{ node: string }>>('callAll', {
        method: 'whoami',
        scope: 'node',
      });
      expect(local.map((r) => r.node)).toEqual(['a', 'a']);
    });

    it("from a worker too: callAll is mesh-wide by default, { scope: 'node' } is its node", async () => {
      const mesh = await b.call(workersB[0], 'relayAll', {});
      expect((mesh as { value: string[] }).value.sort()).toEqual(['a', 'a', 'b', 'b']);
      const local = await b.call(workersB[0], 'relayAll', { scope: 'node' });
      expect((local as { value: string[] }).value).toEqual(['b', 'b']);
    });
  });

  describe('publish', () => {
    it('reaches every subscriber on every node once, from a primary and from a worker', async () => {
      await a.value('publish', { key: 'from-primary-a' });
      await b.call(workersB[0], 'note', { key: 'from-worker-b' });
      const all = [
        ...(await a.value<number[]>('workers')).map((w) => [a, w] as const),
        ...workersB.map((w) => [b, w] as const),
      ];
      for (const [node, w] of all) {
        let got: string[] = [];
        for (let i = 0; i < 100; i++) {
          got = ((await node.call(w, 'received')) as { value: string[] }).value;
          if (got.includes('from-primary-a') && got.includes('from-worker-b')) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        expect(got.filter((k) => k === 'from-primary-a')).toHaveLength(1);
        expect(got.filter((k) => k === 'from-worker-b')).toHaveLength(1);
      }
    });
  });

  describe('nodes() and isolation', () => {
    it('lists the nodes seen, their workers and when each was last heard', async () => {
      const nodes =
        await a.value<
          Array<{
            node: string;
            self: boolean;
            workers: Array<{ id: number }>;
            lastHeardAt: number;
          }>
        >('nodes');
      expect(nodes.map((n) => [n.node, n.self])).toEqual([
        ['a', true],
        ['b', false],
      ]);
      expect(nodes[1]!.workers.map((w) => w.id)).toEqual(workersB);
      expect(Date.now() - nodes[1]!.lastHeardAt).toBeLessThan(3_000);
    });

    it('an app with another prefix does not see this one', async () => {
      const other = await MeshNodeProc.start('b', [url], { PREFIX: 'otherapp' });
      try {
        const seen = await other.value<Array<{ node: string }>>('nodes');
        expect(seen.map((n) => n.node)).toEqual(['b']);
        const r = await other.call({ node: 'a', worker: 1 }, 'whoami');
        expect(r).toMatchObject({ ok: false, code: 'NO_TARGET' });
      } finally {
        await other.close();
      }
    }, 60_000);

    it('a node with a drifted contract is reported (CONTRACT_MISMATCH) and calls to it are refused', async () => {
      const d = await MeshNodeProc.start('d', [url], { DRIFT: '1' });
      try {
        let errors: string[] = [];
        for (let i = 0; i < 100; i++) {
          errors = await a.value<string[]>('errors');
          if (errors.some((e) => e.startsWith('CONTRACT_MISMATCH'))) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(errors.some((e) => e.startsWith('CONTRACT_MISMATCH') && e.includes("'d'"))).toBe(
          true,
        );
        const r = await a.call({ node: 'd', worker: 1 }, 'whoami');
        expect(r).toMatchObject({ ok: false, code: 'CONTRACT_MISMATCH' });
        // Its 'any' calls stay among nodes of its own contract: none handles 'extra'.
        const none = await d.call('any', 'extra');
        expect(none).toMatchObject({ ok: false, code: 'NO_HANDLER' });
      } finally {
        await d.close();
      }
    }, 60_000);
  });
});
