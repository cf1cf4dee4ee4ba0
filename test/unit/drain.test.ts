/** The drain extension over in-memory links: the hub's drain reaches a worker, a worker's never. */
import { describe, expect, it } from 'vitest';
import { type DrainHub, drainHub } from '../../src/drain/extension.js';
import { defineContract } from '../../src/index.js';
import { expectForbiddenBetweenWorkers, harnessPerTest } from './helpers.js';

const contract = defineContract({ methods: { ping: {} } });
const start = harnessPerTest(contract);

describe('the drain extension on a memory harness', () => {
  it("refuses a worker's $drain.start routed to another worker with FORBIDDEN; the hub's drain runs its handlers, then disconnects it", async () => {
    let drain!: DrainHub;
    const h = await start(2, {
      install: (primary) => {
        drain = primary.install(drainHub());
      },
    });
    const target = h.workers[1]!;
    let handlers = 0;
    target.onDrain(() => {
      handlers++;
    });
    await expectForbiddenBetweenWorkers(h, '$drain.start', { timeoutMs: 1_000 });
    expect(target.draining).toBe(false);
    expect(handlers).toBe(0);
    let exit!: () => void;
    const exited = new Promise<void>((r) => (exit = r));
    let killed = false;
    await drain.drain(
      {
        worker: {
          id: 2,
          isDead: () => false,
          isConnected: () => !target.isClosed,
          disconnect: () => {
            h.kill(1);
            exit();
          },
        },
        exited,
        kill: () => {
          killed = true;
        },
      },
      performance.now() + 2_000,
    );
    expect(handlers).toBe(1);
    expect(target.draining).toBe(true);
    expect(target.isClosed).toBe(true);
    expect(killed).toBe(false);
  });
});
