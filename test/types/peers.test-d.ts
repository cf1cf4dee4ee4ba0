/** The types of `bus.peers()`: the same on a worker's bus and on the primary's (`app.bus`). */
import { describe, expectTypeOf, it } from 'vitest';
import type { ClusterApp, Contract, WorkerBus } from '../../src/index.js';

interface Peer {
  readonly workerId: number;
  readonly slot: number;
  readonly pid: number;
}

describe('bus.peers()', () => {
  it('resolves with { workerId, slot, pid }[] in a worker', () => {
    expectTypeOf<WorkerBus<Contract>['peers']>().toEqualTypeOf<() => Promise<Peer[]>>();
    expectTypeOf<WorkerBus<Contract>['peers']>().parameters.toEqualTypeOf<[]>();
  });

  it('resolves with the same on app.bus', () => {
    expectTypeOf<ClusterApp<Contract>['bus']['peers']>().toEqualTypeOf<() => Promise<Peer[]>>();
  });

  it('is exported as PeerInfo', () => {
    expectTypeOf<import('../../src/index.js').PeerInfo>().toEqualTypeOf<Peer>();
  });
});
