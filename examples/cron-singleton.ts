/**
 * A cron job that runs once for the whole cluster, not once per worker: every worker schedules
 * it, only the leader runs each tick, and when the leader is killed another worker takes over.
 * Run it with `node --import tsx examples/cron-singleton.ts`.
 */
import cluster from 'node:cluster';
import { connect, defineContract, startCluster } from 'clusterbus';
import { z } from 'zod';

export const contract = defineContract({
  methods: {
    // A worker reports each tick it ran to the primary.
    ticked: { input: z.object({ worker: z.number(), fencingToken: z.number() }), output: z.null() },
  },
});

if (cluster.isPrimary) {
  const app = await startCluster({ contract, workers: 3 });
  const ticks: Array<{ worker: number; fencingToken: number }> = [];
  let wake: () => void = () => {};
  app.bus.handle('ticked', (tick) => {
    ticks.push(tick);
    console.log(`tick by worker ${tick.worker} (fencing token ${tick.fencingToken})`);
    wake();
    return null;
  });
  const waitForTicks = (n: number) =>
    new Promise<void>((resolve) => {
      wake = () => {
        if (ticks.length >= n) resolve();
      };
      wake();
    });

  await waitForTicks(3);
  const leader = ticks.at(-1)!.worker;
  console.log(`killing the leader, worker ${leader}`);
  const pid = app.workers().find((w) => w.id === leader)?.pid;
  if (pid !== undefined) process.kill(pid, 'SIGKILL');
  await waitForTicks(6);
  const after = ticks.slice(3).map((t) => t.worker);
  console.log(`taken over by another worker: ${after.every((w) => w !== leader)}`);
  await app.close();
} else {
  const bus = await connect(contract);
  const worker = cluster.worker!.id;
  // Every second (6 fields: seconds first), in the leader only. The lease lives 1 s unrenewed.
  await bus.schedule(
    'report',
    '* * * * * *',
    async ({ fencingToken }) => {
      await bus.call('primary', 'ticked', { worker, fencingToken });
    },
    { ttlMs: 1_000 },
  );
}
