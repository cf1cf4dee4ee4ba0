/**
 * Chaos: 4 workers under a steady mix of primary -> worker and worker -> worker calls (by id and
 * `'any'`), `callAll` from the primary and from workers, publishes from the primary and from
 * workers, and shared-store increments, while a random worker is killed with SIGKILL every
 * second for 15 s. Afterwards, every call has settled with a value or an allowed code, every
 * acknowledged increment is in the store, every event reached every worker that was there
 * before it was sent and still there after it was delivered, nothing is pending anywhere, and
 * the cluster is back to 4 ready workers.
 *
 * How it is counted (the primary, this vitest process, drives everything and keeps the books;
 * a dead worker cannot report, so nothing depends on what a worker says after the fact):
 *
 * - Calls. Every operation is issued by the primary and awaited by one of a few lanes; its
 *   outcome (value or code) is tallied when it settles. Operations run *in* a worker (its calls
 *   to a peer, its `callAll`) report their own outcome in their result. The lanes must all end
 *   (each call has a timeout, so a hung call would fail the test), and no code outside the
 *   allowed set may appear.
 * - Increments. The primary asks a worker to `increment('total')`; a bump is acknowledged when
 *   the primary gets the new value back. An increment whose worker is killed after the primary's
 *   store applied it, but before the answer came back, is applied and unacknowledged: no bus can
 *   make that exactly-once without idempotency keys (the answer died with the process). So the
 *   test proves: the values acknowledged are distinct and all <= the final value (each occupies
 *   its own step of the counter: none lost, none merged), and
 *   `final === acknowledged + appliedInDoubt` with `0 <= appliedInDoubt <= inDoubt`, where
 *   `inDoubt` counts the bumps that failed after they may have reached a worker (`TARGET_EXITED`,
 *   `TIMEOUT`; a `NO_TARGET` bump was never sent). With no bump in doubt, that is
 *   `final === acknowledged` exactly.
 * - Events. Each event carries a sequence number. The primary records each fan-out: the events
 *   it publishes when it publishes them, the events of workers when its own subscriber sees them
 *   (synchronously after the bus forwarded them), each with a logical clock and the workers
 *   connected at that moment (those the bus sends it to). Every worker appends what it receives
 *   to a list, and the primary polls the lists (`receipts`, from the index it has) every 250 ms
 *   and once more at the end. Node's IPC channel keeps order, so a worker that answers a poll
 *   issued after a fan-out has received that event first: for each worker, every event fanned
 *   out while it was connected and before its last answered poll must be in its list. That is
 *   "alive from before it was sent until after it was delivered", judged for dead workers too
 *   (up to their last answer). The primary itself must have received every event whose `emit`
 *   was acknowledged (the event travels before the answer on the same channel).
 */
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { BusError, type ClusterApp, startCluster } from '../../src/index.js';
import { contract } from './fixtures/chaos-contract.js';
import { forkedPids, isAlive, until, within } from './helpers.js';

type ChaosApp = ClusterApp<typeof contract>;

const WORKER = fileURLToPath(new URL('./fixtures/chaos-worker.ts', import.meta.url));
const WORKERS = 4;
const CHAOS_MS = 15_000;
const KILL_EVERY_MS = 1_000;
const LANES = 6;
const PAUSE_MS = 2;
const POLL_EVERY_MS = 250;
/** The timeout of the calls a worker makes. */
const INNER_TIMEOUT_MS = 4_000;
/** The timeout of the primary's calls: longer than a worker's own, plus callAll's grace. */
const OUTER_TIMEOUT_MS = 6_000;

/** Codes a call may settle with under chaos, besides its value. */
const ALLOWED = new Set(['OK', 'TARGET_EXITED', 'NO_TARGET', 'TIMEOUT']);
/** Codes of one worker's entry in a callAll (it was connected when the call went out). */
const ALLOWED_ENTRY = new Set(['OK', 'TARGET_EXITED', 'TIMEOUT']);

type Source = 'primary' | number;
interface Receipt {
  readonly seq: number;
  readonly source: Source;
}
/** One event as the primary saw it leave for the workers. */
interface Fanout {
  readonly seq: number;
  readonly source: Source;
  /** Logical time of the fan-out. */
  readonly clock: number;
  /** The workers connected at that moment: the bus sent it to each (the publisher delivers its own). */
  readonly to: readonly number[];
}
/** One worker, from ready to exit, as the primary saw it. */
interface Life {
  readonly id: number;
  readonly pid: number | undefined;
  readonly readyMs: number;
  exitMs: number | undefined;
  killedMs: number | undefined;
  /** Its receipts, as polled. */
  readonly received: Receipt[];
  /** The logical time at which its last answered poll was issued; -1: none answered. */
  polledAt: number;
  polling: boolean;
}

/** A small seeded PRNG (mulberry32): the choices repeat for a seed, the timing does not. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function codeOf(error: unknown): string {
  if (error instanceof BusError) return error.code;
  throw error;
}

let app: ChaosApp | undefined;

afterEach(async () => {
  await app?.close({ timeoutMs: 5_000 });
  app = undefined;
  expect(forkedPids().filter(isAlive)).toEqual([]);
  expect(Object.keys(cluster.workers ?? {})).toEqual([]);
});

it('keeps every promise while a random worker is SIGKILLed every second', async () => {
  const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 32));
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T | undefined =>
    items.length === 0 ? undefined : items[Math.floor(random() * items.length)];
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0);

  const running = await startCluster({
    contract,
    workers: WORKERS,
    exec: WORKER,
    execArgv: ['--import', 'tsx'],
    // Replace at once, every time: the point is the bus under churn, not the restart policy.
    maxRestarts: 1_000,
    restartBackoffMs: 1,
    maxRestartBackoffMs: 20,
    // Health pings run through the chaos too (system calls on the same links).
    health: { intervalMs: 1_000, misses: 5 },
    signals: false,
  });
  app = running;
  const bus = running.bus;
  const busErrors: string[] = [];
  running.on('error', (e) => busErrors.push(`${e.code}: ${e.message}`));

  // ------------------------------------------------------------------ the books
  const tally = new Map<string, Map<string, number>>();
  const count = (op: string, code: string) => {
    const codes = tally.get(op) ?? new Map<string, number>();
    codes.set(code, (codes.get(code) ?? 0) + 1);
    tally.set(op, codes);
  };
  const wrong: string[] = [];
  let inFlight = 0;
  /** Awaits one call and tallies how it settled: its value, or its code. Never rejects. */
  const settle = async <T>(
    op: string,
    call: Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false; code: string }> => {
    inFlight++;
    try {
      const value = await call;
      count(op, 'OK');
      return { ok: true, value };
    } catch (error) {
      const code = codeOf(error);
      count(op, code);
      return { ok: false, code };
    } finally {
      inFlight--;
    }
  };

  const lives = new Map<number, Life>();
  const born = (id: number, pid: number | undefined) =>
    lives.set(id, {
      id,
      pid,
      readyMs: now(),
      exitMs: undefined,
      killedMs: undefined,
      received: [],
      polledAt: -1,
      polling: false,
    });
  for (const w of running.workers()) born(w.id, w.pid);
  running.on('worker:ready', (e) => born(e.workerId, e.pid));
  running.on('worker:exit', (e) => {
    const life = lives.get(e.workerId);
    if (life !== undefined) life.exitMs = now();
  });

  let clock = 0;
  let nextSeq = 1;
  const fanouts = new Map<number, Fanout>();
  const fannedOut = (seq: number, source: Source) =>
    fanouts.set(seq, { seq, source, clock: ++clock, to: bus.connectedWorkers() });
  const primaryReceived = new Set<number>();
  bus.subscribe('tick', ({ seq }, { source }) => {
    primaryReceived.add(seq);
    // A worker's event: the bus has just sent it on to every connected worker but its publisher.
    if (source !== 'primary') fannedOut(seq, source);
  });
  const emitted = new Set<number>();
  const acknowledged: number[] = [];
  let inDoubt = 0;

  // ------------------------------------------------------------------ the operations
  const connected = () => bus.connectedWorkers();
  const operations: Array<() => Promise<void>> = [
    // primary -> worker
    async () => {
      const id = pick(connected());
      if (id === undefined) return;
      const a = Math.floor(random() * 1_000);
      const r = await settle('primary->worker add', bus.call(id, 'add', { a, b: 1 }));
      if (r.ok && r.value !== a + 1) wrong.push(`add ${a}+1 gave ${r.value}`);
    },
    // worker -> worker, by id (sometimes a worker just killed) and by 'any'
    async () => {
      const ids = connected();
      const from = pick(ids);
      if (from === undefined) return;
      const target = random() < 0.25 ? 'any' : (pick(ids.filter((id) => id !== from)) ?? from);
      const a = Math.floor(random() * 1_000);
      const r = await settle(
        'primary->worker relay',
        bus.call(
          from,
          'relay',
          { target, a, b: 2, timeoutMs: INNER_TIMEOUT_MS },
          { timeoutMs: OUTER_TIMEOUT_MS },
        ),
      );
      if (!r.ok) return;
      const outcome = r.value;
      if (outcome.ok) {
        count('worker->worker add', 'OK');
        if (outcome.value !== a + 2) wrong.push(`relayed add ${a}+2 gave ${outcome.value}`);
      } else {
        count('worker->worker add', outcome.code);
      }
    },
    // callAll from the primary
    async () => {
      const r = await settle(
        'primary callAll',
        bus.callAll('ping', undefined, { timeoutMs: INNER_TIMEOUT_MS }),
      );
      for (const e of r.ok ? r.value : []) {
        if (e.status === 'fulfilled') {
          count('primary callAll entry', 'OK');
          if (e.value.workerId !== e.workerId)
            wrong.push(`ping of ${e.workerId}: ${e.value.workerId}`);
        } else {
          count('primary callAll entry', e.error.code);
        }
      }
    },
    // callAll from a worker
    async () => {
      const id = pick(connected());
      if (id === undefined) return;
      const r = await settle(
        'primary->worker gather',
        bus.call(id, 'gather', { timeoutMs: INNER_TIMEOUT_MS }, { timeoutMs: OUTER_TIMEOUT_MS }),
      );
      for (const e of r.ok ? r.value : []) count('worker callAll entry', e.code ?? 'OK');
    },
    // publish from the primary
    async () => {
      const seq = nextSeq++;
      bus.publish('tick', { seq });
      fannedOut(seq, 'primary');
      count('primary publish', 'OK');
    },
    // publish from a worker
    async () => {
      const id = pick(connected());
      if (id === undefined) return;
      const seq = nextSeq++;
      const r = await settle('primary->worker emit', bus.call(id, 'emit', { seq }));
      if (r.ok) emitted.add(seq);
    },
    // store increments, from workers
    async () => {
      const id = pick(connected());
      if (id === undefined) return;
      const r = await settle('primary->worker bump', bus.call(id, 'bump', { key: 'total' }));
      if (r.ok) acknowledged.push(r.value);
      // It may have reached the worker (and the store) before the worker died or stalled.
      else if (r.code === 'TARGET_EXITED' || r.code === 'TIMEOUT') inDoubt++;
    },
  ];

  // ------------------------------------------------------------------ the receipts poller
  const polls = new Set<Promise<void>>();
  const poll = async (life: Life): Promise<void> => {
    if (life.polling) return;
    life.polling = true;
    const at = clock;
    const r = await settle(
      'primary->worker receipts',
      bus.call(
        life.id,
        'receipts',
        { from: life.received.length },
        { timeoutMs: INNER_TIMEOUT_MS },
      ),
    );
    if (r.ok) {
      life.received.push(...r.value);
      life.polledAt = at;
    }
    life.polling = false;
  };
  const pollAll = () => {
    for (const id of connected()) {
      const life = lives.get(id);
      if (life === undefined) continue;
      const p = poll(life);
      polls.add(p);
      void p.finally(() => polls.delete(p));
    }
  };

  // ------------------------------------------------------------------ chaos
  const chaosEnd = performance.now() + CHAOS_MS;
  const going = () => performance.now() < chaosEnd;
  const kills: Array<{ id: number; pid: number; atMs: number }> = [];
  const killer = (async () => {
    while (going()) {
      await sleep(KILL_EVERY_MS);
      if (!going()) break;
      const victim = pick(running.workers().filter((w) => w.pid !== undefined));
      if (victim?.pid === undefined) continue;
      try {
        process.kill(victim.pid, 'SIGKILL');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
        continue;
      }
      kills.push({ id: victim.id, pid: victim.pid, atMs: now() });
      const life = lives.get(victim.id);
      if (life !== undefined) life.killedMs = now();
    }
  })();
  const poller = (async () => {
    while (going()) {
      pollAll();
      await sleep(POLL_EVERY_MS);
    }
  })();
  const lanes = Array.from({ length: LANES }, async () => {
    while (going()) {
      await operations[Math.floor(random() * operations.length)]!();
      await sleep(PAUSE_MS);
    }
  });
  // Every call has a timeout: the lanes must all end, or some call never settled.
  await within(
    Promise.all([killer, poller, ...lanes]),
    CHAOS_MS + 3 * OUTER_TIMEOUT_MS,
    'the chaos lanes',
  );
  await within(Promise.all([...polls]), 2 * OUTER_TIMEOUT_MS, 'the last polls');
  expect(inFlight).toBe(0);
  const chaosMs = now();

  // ------------------------------------------------------------------ recovery
  await until(
    () => running.workers(),
    (ws) => ws.length === WORKERS && ws.every((w) => w.connected && w.state === 'ready'),
    `${WORKERS} ready workers again`,
    20_000,
  );
  const survivors = bus.connectedWorkers();
  expect(survivors).toHaveLength(WORKERS);
  expect(running.workers().map((w) => w.slot)).toEqual([0, 1, 2, 3]);
  // Healthy: each has answered a health ping since it became ready, and misses none.
  await until(
    () => running.health().workers,
    (ws) =>
      ws.length === WORKERS &&
      ws.every((w) => w.state === 'ready' && w.misses === 0 && w.report?.healthy === true),
    `${WORKERS} healthy workers`,
    10_000,
  );
  // Each answers, and has nothing pending (what a worker had in flight when the chaos stopped
  // settles within its own timeout).
  for (const id of survivors) {
    expect(await bus.call(id, 'ping')).toMatchObject({ workerId: id });
    await until(
      () => bus.call(id, 'pending'),
      (n) => n === 0,
      `worker ${id} has nothing pending`,
      2 * OUTER_TIMEOUT_MS,
    );
  }
  expect(bus.pendingCount).toBe(0);
  // A last poll of the survivors, issued after every fan-out: they are judged on every event
  // sent since they connected.
  for (const id of survivors) await poll(lives.get(id)!);
  for (const id of survivors) expect(lives.get(id)!.polledAt).toBe(clock);

  // ------------------------------------------------------------------ calls settled
  const byOp = Object.fromEntries(
    [...tally].map(([op, codes]) => [op, Object.fromEntries([...codes].sort())]),
  );
  for (const [op, codes] of tally) {
    const allowed = op.endsWith('entry') ? ALLOWED_ENTRY : ALLOWED;
    for (const code of codes.keys()) expect(allowed, `${op}: ${code}`).toContain(code);
  }
  expect(wrong).toEqual([]);

  // ------------------------------------------------------------------ increments
  const total = (await bus.store('counters').get('total')) ?? 0;
  expect(new Set(acknowledged).size).toBe(acknowledged.length);
  expect(Math.max(0, ...acknowledged)).toBeLessThanOrEqual(total);
  const appliedInDoubt = total - acknowledged.length;
  expect(appliedInDoubt).toBeGreaterThanOrEqual(0);
  expect(appliedInDoubt).toBeLessThanOrEqual(inDoubt);

  // ------------------------------------------------------------------ events
  let judged = 0;
  const missing: string[] = [];
  for (const life of lives.values()) {
    const seqs = life.received.map((r) => r.seq);
    expect(new Set(seqs).size, `worker ${life.id} received an event twice`).toBe(seqs.length);
    // Between one publisher and one receiver, events keep their order.
    const last = new Map<Source, number>();
    for (const r of life.received) {
      expect(r.seq, `worker ${life.id}: order from ${r.source}`).toBeGreaterThan(
        last.get(r.source) ?? 0,
      );
      last.set(r.source, r.seq);
    }
    if (life.polledAt < 0) continue;
    const got = new Set(seqs);
    for (const f of fanouts.values()) {
      if (f.clock > life.polledAt || !f.to.includes(life.id)) continue;
      judged++;
      if (!got.has(f.seq)) missing.push(`worker ${life.id} missed event ${f.seq} from ${f.source}`);
    }
  }
  expect(missing).toEqual([]);
  for (const seq of emitted) expect(primaryReceived.has(seq), `event ${seq}`).toBe(true);
  for (const f of fanouts.values()) {
    if (f.source === 'primary') expect(primaryReceived.has(f.seq)).toBe(true);
  }

  // ------------------------------------------------------------------ nothing else went wrong
  expect(busErrors).toEqual([]);
  for (const id of survivors) expect(await bus.call(id, 'errors')).toEqual([]);

  const summary = {
    seed,
    chaosMs,
    kills: kills.length,
    lives: lives.size,
    judgedLives: [...lives.values()].filter((l) => l.polledAt >= 0).length,
    // Each worker: [id, ready at, killed at, exit seen at (ms since start), events received].
    lifetimes: [...lives.values()].map((l) => [
      l.id,
      l.readyMs,
      l.killedMs ?? null,
      l.exitMs ?? null,
      l.received.length,
    ]),
    increments: { acknowledged: acknowledged.length, inDoubt, appliedInDoubt, storeTotal: total },
    events: { published: fanouts.size, deliveriesJudged: judged },
    calls: byOp,
  };
  console.info(`chaos: ${JSON.stringify(summary, null, 1)}`);
  // The run must have exercised what it claims: kills, churn, and every kind of operation.
  expect(kills.length).toBeGreaterThanOrEqual(10);
  expect(lives.size).toBeGreaterThanOrEqual(WORKERS + 5);
  expect(acknowledged.length).toBeGreaterThan(100);
  expect(judged).toBeGreaterThan(100);
  for (const op of [
    'primary->worker add',
    'worker->worker add',
    'primary callAll',
    'worker callAll entry',
    'primary publish',
    'primary->worker emit',
  ]) {
    expect(tally.get(op)?.get('OK') ?? 0, op).toBeGreaterThan(10);
  }
}, 90_000);
