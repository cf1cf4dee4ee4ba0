/**
 * The peers extension over in-memory links: a worker's `bus.peers()` and the primary's list the
 * ready workers the hub's source describes (the caller included), a worker that is gone or not
 * described is left out, and every misuse settles: no hub extension (`NO_HANDLER`), a closed bus
 * (`CLOSED`), a malformed answer (`PROTOCOL`).
 */
import { describe, expect, it } from 'vitest';
import { defineContract } from '../../src/index.js';
import type { Extension } from '../../src/internal.js';
import { type DescribePeer, peersHub } from '../../src/peers/extension.js';
import { expectForbiddenBetweenWorkers, harnessPerTest, rejection, until } from './helpers.js';

const contract = defineContract({ methods: { ping: {} } });
const start = harnessPerTest(contract);

/** Workers 1..n in slots 0..n-1, pid 1000 + id; the ids in `hidden` are not ready. */
function source(hidden: Set<number> = new Set()): DescribePeer {
  return (id) => (hidden.has(id) ? undefined : { slot: id - 1, pid: 1_000 + id });
}

describe('bus.peers()', () => {
  it('lists every ready worker, ascending by slot, the calling worker included, in a worker and on the primary', async () => {
    const h = await start(3, { install: (p) => p.install(peersHub(source())) });
    const all = [1, 2, 3].map((id) => ({ workerId: id, slot: id - 1, pid: 1_000 + id }));
    expect(await h.workers[1]!.peers()).toEqual(all);
    expect(await h.primary.peers()).toEqual(all);
  });

  it('leaves out a worker the source does not describe (starting, draining) and one that is gone', async () => {
    const hidden = new Set([2]);
    const h = await start(3, { install: (p) => p.install(peersHub(source(hidden))) });
    expect((await h.workers[0]!.peers()).map((p) => p.workerId)).toEqual([1, 3]);
    h.kill(2);
    await until(() => !h.primary.connectedWorkers().includes(3));
    expect((await h.workers[0]!.peers()).map((p) => p.workerId)).toEqual([1]);
    hidden.delete(2);
    expect((await h.primary.peers()).map((p) => p.workerId)).toEqual([1, 2]);
  });

  it('is served by the hub only: a $peers.list routed to another worker is refused with FORBIDDEN', async () => {
    const h = await start(2, { install: (p) => p.install(peersHub(source())) });
    await expectForbiddenBetweenWorkers(h, '$peers.list', undefined);
  });

  it('rejects with NO_HANDLER when the primary runs no peers extension, in a worker and on the primary', async () => {
    const h = await start(1);
    expect((await rejection(h.workers[0]!.peers())).code).toBe('NO_HANDLER');
    expect((await rejection(h.primary.peers())).code).toBe('NO_HANDLER');
  });

  it('rejects with CLOSED once the bus is closed', async () => {
    const h = await start(2, { install: (p) => p.install(peersHub(source())) });
    await h.workers[0]!.close();
    expect((await rejection(h.workers[0]!.peers())).code).toBe('CLOSED');
    await h.primary.close();
    expect((await rejection(h.primary.peers())).code).toBe('CLOSED');
  });

  it('rejects with PROTOCOL when the answer is not a list of { workerId, slot, pid }', async () => {
    const liar: Extension<unknown> = {
      name: 'peers',
      install(ctx) {
        ctx.handle('list', () => [{ workerId: 'one', slot: 0, pid: 1 }], { callers: 'any' });
        return { api: {} };
      },
    };
    const h = await start(1, { install: (p) => p.install(liar) });
    const error = await rejection(h.workers[0]!.peers());
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toContain('malformed list');
  });
});
