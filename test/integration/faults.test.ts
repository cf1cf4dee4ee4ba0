/**
 * Faults of the channel between the primary and a worker, on real processes: a worker that
 * disconnects without exiting, one that exits while its channel stays open, one killed, one that
 * calls `process.exit()` inside a handler; a primary that dies under its workers (they exit; its
 * store is lost back to the last snapshot); and two things clusterbus does not do (retry a call,
 * replay an event), shown so that the README's Guarantees can name them.
 *
 * In each worker case, the worker leaves with work pending on it: two calls from the primary, a
 * call from a peer worker routed through the primary, and a lock it holds with a peer waiting.
 * Whichever the primary sees first, the disconnect or the exit, settles all of it at once:
 * the calls reject with `TARGET_EXITED` (long before their 20 s timeouts), the waiter gets the
 * lock, and nothing is left pending in the primary or the peers.
 *
 * Exit without disconnect: Node closes a process's IPC channel when it exits, so the primary
 * usually sees both at once (SIGKILL, `process.exit()`: the two events race, and the tests accept
 * either order). The channel outlives the process only when another process holds its descriptor,
 * as when the worker spawned a child that inherited it: then the primary sees the exit and no
 * disconnect until that child ends. The `exit-keep-channel` case makes exactly that happen.
 *
 * Disconnect without exit: a bare `process.disconnect()` in a cluster worker makes Node's cluster
 * exit it at once (code 0: lib/internal/cluster/child.js treats a disconnect it did not start as
 * the primary going away). A worker lingers after its channel closed only when it disconnected
 * through `cluster.worker.disconnect()` and something keeps it alive: the `disconnect` case.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type ClusterApp, type StartClusterOptions, startCluster } from '../../src/index.js';
import { contract } from './fixtures/chaos-contract.js';
import { forkedPids, isAlive, rejection, until } from './helpers.js';

type FaultApp = ClusterApp<typeof contract>;

const WORKER = fileURLToPath(new URL('./fixtures/chaos-worker.ts', import.meta.url));
const ORPHAN_PRIMARY = fileURLToPath(
  new URL('./fixtures/chaos-orphan-primary.ts', import.meta.url),
);
const PERSIST_PRIMARY = fileURLToPath(
  new URL('./fixtures/chaos-persist-primary.ts', import.meta.url),
);
/** The timeout of every call left pending: settling must come long before it. */
const PENDING_TIMEOUT_MS = 20_000;
/** How soon after the primary sees the worker go everything must have settled (loose: loaded CI). */
const SETTLE_WITHIN_MS = 5_000;

/** Whether `pid` runs: alive and not a zombie waiting to be reaped (Linux: /proc). */
function isRunning(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return isAlive(pid);
  }
}

let app: FaultApp | undefined;
/** Processes a test started outside the cluster, ended after it whatever happened. */
const strays = new Set<number>();
let spawnedPrimary: ChildProcess | undefined;

afterEach(async () => {
  if (spawnedPrimary !== undefined && spawnedPrimary.exitCode === null) {
    spawnedPrimary.kill('SIGKILL');
  }
  spawnedPrimary = undefined;
  for (const pid of strays) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await until(
    () => [...strays].filter(isRunning),
    (left) => left.length === 0,
    'the stray processes end',
    5_000,
  );
  strays.clear();
  await app?.close({ timeoutMs: 5_000 });
  if (app !== undefined) expect(app.bus.pendingCount).toBe(0);
  app = undefined;
  expect(forkedPids().filter(isRunning)).toEqual([]);
  expect(Object.keys(cluster.workers ?? {})).toEqual([]);
});

function start(options: Partial<StartClusterOptions<typeof contract>> = {}): Promise<FaultApp> {
  return startCluster({
    contract,
    workers: 3,
    exec: WORKER,
    execArgv: ['--import', 'tsx'],
    restart: false,
    health: false,
    signals: false,
    ...options,
  });
}

/** Spawns a primary fixture under tsx and collects the JSON lines it (and its workers) print. */
function spawnPrimary(script: string, args: string[] = []) {
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Array<Record<string, unknown>> = [];
  createInterface({ input: proc.stdout! }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as Record<string, unknown>);
    } catch {
      // not one of ours
    }
  });
  const next = (event: string, ms = 30_000) =>
    until(
      () => lines.find((l) => l.event === event),
      (l) => l !== undefined,
      `the spawned primary prints '${event}'`,
      ms,
    ) as Promise<Record<string, unknown>>;
  return { proc, lines, next };
}

type How = 'SIGKILL' | 'exit' | 'exit-keep-channel' | 'disconnect';

/** What the primary saw of the leaving worker, and when (performance.now()). */
interface Seen {
  readonly events: Array<{ event: 'disconnect' | 'exit'; at: number; connected: boolean }>;
  /** When every pending thing had settled. */
  settledAt: number;
  childPid: number | null;
}

/**
 * Leaves worker 1 stranded with work (see the file's comment), makes it go `how`, and checks
 * that all of it settled at once. Returns what the primary saw.
 */
async function strand(running: FaultApp, how: How): Promise<Seen & { pid: number; id: number }> {
  const bus = running.bus;
  const host = running.storeHost!;
  const [w1, w2, w3] = bus.connectedWorkers() as [number, number, number];
  const pid = running.workers().find((w) => w.id === w1)!.pid!;
  const worker: Worker = cluster.workers![w1]!;
  const seen: Seen = { events: [], settledAt: 0, childPid: null };
  worker.on('disconnect', () =>
    seen.events.push({ event: 'disconnect', at: performance.now(), connected: false }),
  );
  worker.on('exit', () =>
    seen.events.push({ event: 'exit', at: performance.now(), connected: worker.isConnected() }),
  );

  const token = await bus.call(w1, 'hold', { name: 'report', ttlMs: 60_000 });
  const fromPrimary = [1, 2].map(() =>
    rejection(bus.call(w1, 'hang', undefined, { timeoutMs: PENDING_TIMEOUT_MS })),
  );
  const fromPeer = bus.call(
    w2,
    'relayHang',
    { target: w1, timeoutMs: PENDING_TIMEOUT_MS },
    { timeoutMs: PENDING_TIMEOUT_MS + 5_000 },
  );
  const waiter = bus.call(
    w3,
    'take',
    { name: 'report', waitMs: PENDING_TIMEOUT_MS },
    { timeoutMs: PENDING_TIMEOUT_MS + 5_000 },
  );
  await until(
    () => bus.call(w1, 'hanging'),
    (n) => n === 3,
    'worker 1 runs three hanging calls',
  );
  await until(
    () => host.stats().waiters,
    (n) => n === 1,
    'worker 3 waits for the lock',
  );
  expect(host.stats().leases).toBe(1);

  if (how === 'SIGKILL') {
    process.kill(pid, 'SIGKILL');
  } else if (how === 'exit') {
    // process.exit() inside the handler: this call is pending too, and never answered.
    fromPrimary.push(rejection(bus.call(w1, 'leave', { how: 'exit', ms: 0 })));
  } else {
    const left = await bus.call(w1, 'leave', { how, ms: 20, lingerMs: 30_000 });
    seen.childPid = left.childPid;
    if (left.childPid !== null) strays.add(left.childPid);
  }

  const errors = await Promise.all(fromPrimary);
  const relayed = await fromPeer;
  const granted = await waiter;
  seen.settledAt = performance.now();

  expect(errors.map((e) => e.code)).toEqual(errors.map(() => 'TARGET_EXITED'));
  for (const e of errors) expect(e.message).toContain(`worker ${w1}`);
  expect(relayed.code).toBe('TARGET_EXITED');
  expect(relayed.elapsedMs).toBeLessThan(PENDING_TIMEOUT_MS);
  // The lease ended with its holder's link: the waiter got the lock, with a later token.
  expect(granted).toBeGreaterThan(token);
  expect(seen.events.length).toBeGreaterThan(0);
  const goneAt = seen.events[0]!.at;
  expect(seen.settledAt - goneAt).toBeLessThan(SETTLE_WITHIN_MS);

  // Nothing left behind: not in the primary, not in the peers, not in the lock table.
  expect(bus.pendingCount).toBe(0);
  for (const id of [w2, w3]) expect(await bus.call(id, 'pending')).toBe(0);
  expect(host.stats()).toMatchObject({ leases: 0, waiters: 0 });
  // The worker is no target any more; the others still answer.
  expect(bus.connectedWorkers()).toEqual([w2, w3]);
  expect((await rejection(bus.call(w1, 'ping'))).code).toBe('NO_TARGET');
  expect(await bus.call(w2, 'add', { a: 1, b: 2 })).toBe(3);
  return { ...seen, pid, id: w1 };
}

describe('a worker that goes away with work pending on it', () => {
  it('disconnect without exit (cluster.worker.disconnect(), then lingers): everything settles while it still runs', async () => {
    const running = await start();
    app = running;
    const seen = await strand(running, 'disconnect');
    // Settled on the disconnect alone: the process is still running, no exit seen.
    expect(seen.events.map((e) => e.event)).toEqual(['disconnect']);
    expect(isRunning(seen.pid)).toBe(true);
    // The bus does not end it; the cluster's close does, at its deadline (SIGKILL).
    const kills: string[] = [];
    running.on('worker:kill', (e) => kills.push(`${e.workerId}:${e.reason}`));
    await running.close({ timeoutMs: 1_000 });
    expect(kills).toEqual([`${seen.id}:close-timeout`]);
    expect(seen.events.map((e) => e.event)).toEqual(['disconnect', 'exit']);
    expect(isRunning(seen.pid)).toBe(false);
  });

  it('exit without disconnect (its channel held open by a child): everything settles on the exit', async () => {
    const running = await start();
    app = running;
    const seen = await strand(running, 'exit-keep-channel');
    expect(seen.childPid).not.toBeNull();
    // The exit came first, its channel still open; no disconnect yet.
    expect(seen.events).toEqual([expect.objectContaining({ event: 'exit', connected: true })]);
    expect(isRunning(seen.pid)).toBe(false);
    expect(isRunning(seen.childPid!)).toBe(true);
    // The channel closes when the child holding it ends.
    process.kill(seen.childPid!, 'SIGKILL');
    await until(
      () => seen.events.map((e) => e.event),
      (events) => events.includes('disconnect'),
      'the disconnect once the child is gone',
    );
  });

  it.each([
    ['SIGKILL', 'killed with SIGKILL'],
    ['exit', 'process.exit() inside a handler'],
  ] as const)('%s (%s): exit and disconnect together, in either order, settle everything once', async (how, _what) => {
    const running = await start();
    app = running;
    const seen = await strand(running, how);
    await until(
      () => seen.events.length,
      (n) => n === 2,
      'both the exit and the disconnect',
    );
    expect(seen.events.map((e) => e.event).sort()).toEqual(['disconnect', 'exit']);
    console.info(
      `${how}: the primary saw ${seen.events.map((e) => e.event).join(' then ')}, all settled ${(seen.settledAt - seen.events[0]!.at).toFixed(1)} ms after the first`,
    );
  });

  it('a worker that dies while warming up (manualReady, before it is ready): its lease and its watch end too', async () => {
    // Slot 2's worker takes lock 'warmup' and watches a store, then is SIGKILLed before ready().
    const running = await start({ workers: 2, env: { CHAOS_WARMUP_CRASH_SLOT: '2' } });
    app = running;
    const host = running.storeHost!;
    const scaled = await running.scale(3, { readyTimeoutMs: 20_000 }).then(
      () => 'ready',
      (error: { code?: string }) => error.code,
    );
    expect(scaled).toBe('TARGET_EXITED');
    // Its lease ended with its link: the lock is free for the next one, long before its 60 s TTL.
    const next = await running.bus.lock('warmup', { waitMs: 2_000 }).then(
      async (lease) => {
        await lease.release();
        return 'granted';
      },
      (error: { code?: string }) => error.code,
    );
    expect(next).toBe('granted');
    expect(host.stats()).toMatchObject({ leases: 0, waiters: 0, watches: 0 });
  });

  it('a bare process.disconnect() in a worker: Node exits it at once (code 0), and its pending call settles', async () => {
    const running = await start();
    app = running;
    const [w1] = running.bus.connectedWorkers() as [number];
    const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      running.once('worker:exit', (e) => resolve({ code: e.code, signal: e.signal })),
    );
    const pending = rejection(running.bus.call(w1, 'hang', undefined, { timeoutMs: 20_000 }));
    // It lingers 30 s with a timer, but Node's cluster does not let it.
    await running.bus.call(w1, 'leave', { how: 'process-disconnect', ms: 20, lingerMs: 30_000 });
    expect((await pending).code).toBe('TARGET_EXITED');
    expect(await exit).toEqual({ code: 0, signal: null });
  });
});

describe('a primary that dies', () => {
  it('takes its workers with it: each exits on its own (code 0) within seconds, no orphan left', async () => {
    const primary = spawnPrimary(ORPHAN_PRIMARY);
    spawnedPrimary = primary.proc;
    const started = await primary.next('started');
    const pids = started.workers as number[];
    expect(pids).toHaveLength(2);
    for (const pid of pids) strays.add(pid);
    expect(pids.every(isRunning)).toBe(true);

    const killedAt = performance.now();
    primary.proc.kill('SIGKILL');
    await until(
      () => pids.filter(isRunning),
      (left) => left.length === 0,
      'the orphaned workers exit',
      5_000,
    );
    const goneMs = performance.now() - killedAt;
    // Each said goodbye from its 'exit' listener: Node's cluster exited it (code 0) the moment
    // its channel closed, synchronously, before the bus heard of it: its calls were still pending
    // (they die with it, none is rejected first), its bus still open, its lock and a 60 s timer
    // still there. Nothing asynchronous runs in an orphan (no drain handlers).
    const exits = await until(
      () => primary.lines.filter((l) => l.event === 'worker-exit'),
      (l) => l.length === 2,
      'both exit lines',
    );
    expect(exits.map((l) => l.pid).sort()).toEqual([...pids].sort());
    for (const e of exits) {
      expect(e.code).toBe(0);
      expect(e.pending).toBeGreaterThan(0);
      expect(e.busClosed).toBe(false);
    }
    console.info(
      `orphans: both workers gone ${goneMs.toFixed(0)} ms after the primary's SIGKILL; at exit: ${JSON.stringify(exits)}`,
    );
  }, 45_000);

  it('loses the store writes acknowledged after the last snapshot (persist), keeps the ones before', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'clusterbus-faults-'));
    try {
      const file = path.join(dir, 'stores.snapshot');
      // A first cluster counts to 1 and closes: its snapshot is written on close.
      const first = await start({ workers: 1, persist: { file, intervalMs: 60_000 } });
      app = first;
      const [w] = first.bus.connectedWorkers() as [number];
      expect(await first.bus.call(w, 'bump', { key: 'k' })).toBe(1);
      await first.close();
      app = undefined;

      // A second primary loads it, gets an increment acknowledged (2), and dies before its next
      // snapshot (due in 60 s).
      const primary = spawnPrimary(PERSIST_PRIMARY, [file]);
      spawnedPrimary = primary.proc;
      const bumped = await primary.next('bumped');
      expect(bumped).toMatchObject({ before: 1, after: 2 });
      for (const pid of bumped.workers as number[]) strays.add(pid);
      primary.proc.kill('SIGKILL');

      // The next cluster starts from the last snapshot: 1. The acknowledged 2 died with the
      // primary that held it.
      const third = await start({ workers: 1, persist: { file, intervalMs: 60_000 } });
      app = third;
      expect(await third.bus.store('counters').get('k')).toBe(1);
      await third.close();
      app = undefined;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('what is not promised', () => {
  it("does not retry a call: 'any' rejects with TARGET_EXITED when its worker dies, and no other worker runs it", async () => {
    const running = await start();
    app = running;
    const bus = running.bus;
    const ids = bus.connectedWorkers();
    const pending = rejection(
      bus.call('any', 'hang', undefined, { timeoutMs: PENDING_TIMEOUT_MS }),
    );
    const chosen = await until(
      async () => {
        for (const id of ids) if ((await bus.call(id, 'hanging')) === 1) return id;
        return undefined;
      },
      (id) => id !== undefined,
      "the worker 'any' chose runs the call",
    );
    process.kill(running.workers().find((w) => w.id === chosen)!.pid!, 'SIGKILL');
    expect((await pending).code).toBe('TARGET_EXITED');
    // Had the primary re-sent it, the copy would have reached another worker before this check
    // (the rejection came after it, and the channel keeps order).
    for (const id of ids.filter((i) => i !== chosen)) {
      expect(await bus.call(id, 'hanging')).toBe(0);
    }
  });

  it('does not store events: a worker that connects after a publish never receives it', async () => {
    const running = await start({ workers: 2, restart: true });
    app = running;
    const bus = running.bus;
    const [w1, w2] = bus.connectedWorkers() as [number, number];
    bus.publish('tick', { seq: 1 });
    for (const id of [w1, w2]) {
      await until(
        () => bus.call(id, 'receipts', { from: 0 }),
        (r) => r.length === 1,
        `worker ${id} receives event 1`,
      );
    }
    const replaced = new Promise<number>((resolve) =>
      running.on('worker:ready', (e) => resolve(e.workerId)),
    );
    process.kill(running.workers().find((w) => w.id === w1)!.pid!, 'SIGKILL');
    const w3 = await replaced;
    bus.publish('tick', { seq: 2 });
    // A poll issued after the second publish: each has received what it will ever receive.
    expect(await bus.call(w3, 'receipts', { from: 0 })).toEqual([{ seq: 2, source: 'primary' }]);
    expect(await bus.call(w2, 'receipts', { from: 0 })).toEqual([
      { seq: 1, source: 'primary' },
      { seq: 2, source: 'primary' },
    ]);
  });
});
