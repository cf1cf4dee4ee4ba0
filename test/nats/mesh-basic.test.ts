/**
 * The mesh over one nats-server: two nodes (each its own process tree), calls across nodes,
 * errors, publish, callAll.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshNodeProc } from './nodes.js';
import { NATS_SERVER, NatsFixture } from './servers.js';

const fixture = new NatsFixture();
let a: MeshNodeProc;
let b: MeshNodeProc;

describe.skipIf(NATS_SERVER === undefined)('natsMesh over one server', () => {
  beforeAll(async () => {
    const s = await fixture.single();
    [a, b] = await Promise.all([
      MeshNodeProc.start('a', [s.url]),
      MeshNodeProc.start('b', [s.url]),
    ]);
  }, 90_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await fixture.close();
  }, 60_000);

  it('calls a worker on another node', async () => {
    const workersB = await b.value<number[]>('workers');
    const r = await a.call({ node: 'b', worker: workersB[0] }, 'whoami');
    expect(r).toMatchObject({ ok: true, value: { node: 'b', workerId: workersB[0] } });
  });
});
