/**
 * The leadership logic of run-once jobs (`bus.singleton`, `bus.schedule`) over the in-memory
 * harness: one leader at a time, takeover on a cut link and on a lease that stops being renewed,
 * restart after a return or a throw, stop and close, the reserved lock names, misuse.
 */
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { defineContract } from '../../src/contract.js';
import type { BusError } from '../../src/errors.js';
import type { SingletonContext, SingletonHandle } from '../../src/jobs/types.js';
import { StoreHost } from '../../src/state/host.js';
import { harness, rejection, storesPerTest, until } from './helpers.js';

const contract = defineContract({ stores: { n: z.number() } });
const stores = storesPerTest(contract);

interface Run {
  readonly who: string;
  readonly token: number;
  readonly start: number;
  end?: number;
  reason?: unknown;
}

/** A job that records its run in `runs` and lasts until its signal aborts. */
function recorder(runs: Run[], who: string) {
  return async (ctx: SingletonContext) => {
    const run: Run = { who, token: ctx.fencingToken, start: Date.now() };
    runs.push(run);
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    run.end = Date.now();
    run.reason = ctx.signal.reason;
  };
}

const running = (runs: Run[]) => runs.filter((r) => r.end === undefined);

/** Never two runs at once: ordered by token, each ends before the next starts. */
function expectNoOverlap(runs: Run[]): void {
  const sorted = [...runs].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    expect(sorted[i]!.token).toBeGreaterThan(sorted[i - 1]!.token);
    expect(sorted[i - 1]!.end, 'a run still ran when the next started').toBeDefined();
    expect(sorted[i - 1]!.end!).toBeLessThanOrEqual(sorted[i]!.start);
  }
}

describe('bus.singleton', () => {
  it('runs the job in exactly one process of the cluster, the primary included', async () => {
    const h = await stores(3);
    const runs: Run[] = [];
    const handles: SingletonHandle[] = [
      h.primary.singleton('job', recorder(runs, 'primary'), { ttlMs: 1_000 }),
      ...h.workers.map((w, i) => w.singleton('job', recorder(runs, `w${i + 1}`), { ttlMs: 1_000 })),
    ];
    await until(() => runs.length === 1);
    // Several renewals later, still one run and one leader.
    await new Promise((r) => setTimeout(r, 1_200));
    expect(runs).toHaveLength(1);
    expect(handles.filter((x) => x.isLeader)).toHaveLength(1);
    const leader = handles.find((x) => x.isLeader)!;
    expect(leader.fencingToken).toBe(runs[0]!.token);
    expect(handles.filter((x) => !x.isLeader).every((x) => x.fencingToken === undefined)).toBe(
      true,
    );
    await Promise.all(handles.map((x) => x.stop()));
    // The waiters' cancels are one-way messages: the host frees what they held once they arrive.
    await until(() => h.host.stats().leases === 0 && h.host.stats().waiters === 0);
  });

  it("takes over at once when the leader's process goes (its link is cut), with a larger token", async () => {
    const h = await stores(3);
    const runs: Run[] = [];
    h.workers.forEach((w, i) => {
      w.singleton('job', recorder(runs, `w${i}`), { ttlMs: 5_000 });
    });
    await until(() => runs.length === 1);
    for (let round = 0; round < 2; round++) {
      const leader = running(runs)[0]!;
      const cutAt = Date.now();
      h.kill(Number(leader.who.slice(1)));
      // The dead leader's bus closed: its job was told (CLOSED); the next run starts well before ttlMs.
      await until(() => running(runs).length === 1 && running(runs)[0] !== leader);
      expect(Date.now() - cutAt).toBeLessThan(2_500);
      expect((leader.reason as BusError).code).toBe('CLOSED');
    }
    expectNoOverlap(runs);
  });

  it('a leader whose renewals stop arriving loses its leadership at its lease end (LEASE_EXPIRED), and another takes over', async () => {
    const h = await stores(2);
    const runs: Run[] = [];
    const errors: BusError[] = [];
    h.workers[0]!.on('error', (e) => errors.push(e));
    const first = h.workers[0]!.singleton('job', recorder(runs, 'w0'), { ttlMs: 600 });
    await until(() => runs.length === 1);
    h.workers[1]!.singleton('job', recorder(runs, 'w1'), { ttlMs: 600 });
    // Worker 0's frames to the primary stop being written: its extends never arrive.
    h.pairs[0]!.b.stalled = true;
    const stalledAt = Date.now();
    await until(() => runs.length === 2, 5_000);
    const [old, next] = runs as [Run, Run];
    expect(old.end).toBeDefined();
    expect((old.reason as BusError).code).toBe('LEASE_EXPIRED');
    expect(first.isLeader).toBe(false);
    expect(next.who).toBe('w1');
    expect(next.token).toBeGreaterThan(old.token);
    // Within the lease's bound: ttlMs after the last renewal at most (ttlMs from the stall, plus slack).
    expect(next.start - stalledAt).toBeLessThan(600 + 1_000);
    expect(
      errors.some((e) => e.code === 'LEASE_EXPIRED' && /lost its leadership/.test(e.message)),
    ).toBe(true);
    expectNoOverlap(runs);
    // Its link still stalled (the extend in flight unanswered): stop() does not wait for it
    // (regression: it waited for the bus's callTimeoutMs).
    const stopAt = Date.now();
    await first.stop();
    expect(Date.now() - stopAt).toBeLessThan(1_000);
    h.pairs[0]!.b.resume();
  });

  it('a grant that arrives after its lease ended (a busy process) does not run the job: reported, and asked again', async () => {
    const h = await stores(2);
    const runs: Run[] = [];
    const errors: BusError[] = [];
    h.workers[1]!.on('error', (e) => errors.push(e));
    const first = h.workers[0]!.singleton('job', recorder(runs, 'w0'), { ttlMs: 300 });
    await until(() => runs.length === 1);
    h.workers[1]!.singleton('job', recorder(runs, 'w1'), { ttlMs: 300 });
    await new Promise((r) => setTimeout(r, 50));
    // What the primary sends worker 1 is held: its grant arrives well after the lease's end.
    h.pairs[1]!.a.stalled = true;
    await first.stop();
    await new Promise((r) => setTimeout(r, 500));
    h.pairs[1]!.a.resume();
    await until(() => runs.length === 2);
    const late = errors.find((e) => /had ended when its grant arrived/.test(e.message));
    expect(late?.code).toBe('LEASE_EXPIRED');
    // The run came from a later grant, not the late one.
    expect(runs[1]!.token).toBeGreaterThan((late!.data as { fencingToken: number }).fencingToken);
    expectNoOverlap(runs);
  });

  it('restarts a job that returned, after restartDelayMs, in whichever process then gets the lock', async () => {
    const h = await stores(2);
    const starts: Array<{ who: number; token: number; at: number }> = [];
    const ends: number[] = [];
    h.workers.forEach((w, i) => {
      w.singleton(
        'job',
        async (ctx) => {
          starts.push({ who: i, token: ctx.fencingToken, at: Date.now() });
          await new Promise((r) => setTimeout(r, 50));
          ends.push(Date.now());
        },
        { ttlMs: 1_000, restartDelayMs: 300 },
      );
    });
    await until(() => starts.length >= 3, 5_000);
    for (let i = 1; i < 3; i++) {
      expect(starts[i]!.token).toBeGreaterThan(starts[i - 1]!.token);
      // Not before the delay (a few ms of timer slack allowed).
      expect(starts[i]!.at - ends[i - 1]!).toBeGreaterThanOrEqual(290);
    }
    // The releasing process queues again at the back: the lock passes to the other one.
    expect(starts[1]!.who).not.toBe(starts[0]!.who);
  });

  it("reports a job's throw as JOB_FAILED on the bus's error event, and starts it again", async () => {
    const h = await stores(1);
    const errors: BusError[] = [];
    h.workers[0]!.on('error', (e) => errors.push(e));
    let n = 0;
    h.workers[0]!.singleton(
      'flaky',
      () => {
        n++;
        throw new Error(`boom ${n}`);
      },
      { ttlMs: 1_000, restartDelayMs: 20 },
    );
    await until(() => errors.filter((e) => e.code === 'JOB_FAILED').length >= 2);
    const failed = errors.filter((e) => e.code === 'JOB_FAILED');
    expect(failed[0]!.message).toMatch(/singleton 'flaky' \(lease \d+\) threw: boom 1/);
    expect((failed[0]!.cause as Error).message).toBe('boom 1');
    expect(failed[0]!.data).toMatchObject({ singleton: 'flaky' });
  });

  it('stop() aborts the job with ABORTED, keeps the lease until the job returned, then another process takes over', async () => {
    const h = await stores(2);
    const runs: Run[] = [];
    let finish!: () => void;
    const handle = h.workers[0]!.singleton(
      'job',
      async (ctx) => {
        runs.push({ who: 'w0', token: ctx.fencingToken, start: Date.now() });
        // Ignores its signal for a while after it aborts: cleanup that takes time.
        await new Promise<void>((r) => (finish = r));
        runs[0]!.end = Date.now();
        runs[0]!.reason = ctx.signal.reason;
      },
      { ttlMs: 300 },
    );
    await until(() => runs.length === 1);
    h.workers[1]!.singleton('job', recorder(runs, 'w1'), { ttlMs: 300 });
    let stopped = false;
    const stopping = handle.stop().then(() => {
      stopped = true;
    });
    // Well past ttlMs: the lease is still renewed, the other process still waits.
    await new Promise((r) => setTimeout(r, 800));
    expect(runs).toHaveLength(1);
    expect(stopped).toBe(false);
    expect(handle.isLeader).toBe(true);
    finish();
    await stopping;
    expect((runs[0]!.reason as BusError).code).toBe('ABORTED');
    expect(handle.isLeader).toBe(false);
    await until(() => runs.length === 2);
    expectNoOverlap(runs);
    // Idempotent.
    await handle.stop();
  });

  it('Symbol.asyncDispose stops it, as stop() does (await using)', async () => {
    const h = await stores(1);
    const runs: Run[] = [];
    {
      await using handle = h.workers[0]!.singleton('job', recorder(runs, 'w0'), { ttlMs: 1_000 });
      await until(() => handle.isLeader);
    }
    expect((runs[0]!.reason as BusError).code).toBe('ABORTED');
    await until(() => h.host.stats().leases === 0);
  });

  it("closing the bus stops its singletons: the job's signal aborts with CLOSED", async () => {
    const h = await stores(1);
    const runs: Run[] = [];
    const handle = h.workers[0]!.singleton('job', recorder(runs, 'w0'), { ttlMs: 1_000 });
    await until(() => runs.length === 1);
    await h.workers[0]!.close();
    await handle.stop();
    expect((runs[0]!.reason as BusError).code).toBe('CLOSED');
    expect(handle.isLeader).toBe(false);
    expect(() => h.workers[0]!.singleton('other', () => {})).toThrow(
      expect.objectContaining({ code: 'CLOSED' }),
    );
  });

  it("the store host closing (app.close() closes it before the primary's bus) ends the primary's singleton quietly, with CLOSED (regression: three reports)", async () => {
    const h = await harness(contract, 1);
    try {
      const host = await StoreHost.open(h.primary);
      const errors: BusError[] = [];
      h.primary.on('error', (e) => errors.push(e));
      const runs: Run[] = [];
      const handle = h.primary.singleton('job', recorder(runs, 'primary'), { ttlMs: 300 });
      await until(() => handle.isLeader);
      await host.close();
      // Its next renewal finds no host: the run ends, and so does the singleton.
      await until(() => runs[0]!.end !== undefined);
      await handle.stop();
      // Several renewal and retry intervals later: nothing reported, nothing asked again.
      await new Promise((r) => setTimeout(r, 400));
      expect((runs[0]!.reason as BusError).code).toBe('CLOSED');
      expect(errors).toEqual([]);
    } finally {
      expect(await h.close()).toBe(0);
    }
  });

  it("holds its lease under the reserved name '$singleton.<name>': bus.lock refuses '$' names, and a user lock of the same name is another lock", async () => {
    const h = await stores(1);
    const runs: Run[] = [];
    h.workers[0]!.singleton('report', recorder(runs, 'w0'), { ttlMs: 1_000 });
    await until(() => runs.length === 1);
    const refused = await rejection(h.workers[0]!.lock('$singleton.report', { waitMs: 0 }));
    expect(refused.code).toBe('INVALID_ARGUMENT');
    expect(refused.message).toMatch(/reserved/);
    const lease = await h.workers[0]!.lock('report', { waitMs: 0 });
    expect(lease.token).toBeGreaterThan(runs[0]!.token);
    await lease.release();
  });

  it('refuses misuse synchronously with INVALID_ARGUMENT', async () => {
    const h = await stores(1);
    const bus = h.workers[0]!;
    const bad: Array<() => unknown> = [
      () => bus.singleton('', () => {}),
      () => bus.singleton('x'.repeat(1_001), () => {}),
      () => bus.singleton('j', 'nope' as never),
      () => bus.singleton('j', () => {}, { ttlMs: 0 }),
      () => bus.singleton('j', () => {}, { ttlMs: 3e9 }),
      () => bus.singleton('j', () => {}, { ttlMs: 1_000, renewMs: 1_000 }),
      () => bus.singleton('j', () => {}, { restartDelayMs: -1 }),
      () => bus.singleton('j', () => {}, { retryMs: Number.NaN }),
      () => bus.singleton('j', () => {}, null as never),
    ];
    for (const f of bad) expect(f).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    const handle = bus.singleton('j', () => new Promise(() => {}), { ttlMs: 1_000 });
    expect(() => bus.singleton('j', () => {})).toThrow(/already runs on this bus/);
    await until(() => handle.isLeader);
    // A job that never settles: the bus's close ends everything else anyway.
  });

  it('reports asking for the lease when the primary has no store host (NO_HANDLER), and retries every retryMs', async () => {
    const { harness } = await import('./helpers.js');
    const h = await harness(contract, 1);
    try {
      const errors: BusError[] = [];
      h.primary.on('error', (e) => errors.push(e));
      h.primary.singleton('job', () => {}, { retryMs: 50 });
      await until(() => errors.length >= 2);
      expect(errors[0]!.code).toBe('NO_HANDLER');
      expect(errors[0]!.message).toMatch(/singleton 'job': asking for the lease failed/);
    } finally {
      expect(await h.close()).toBe(0);
    }
  });
});

describe('bus.schedule', () => {
  it('runs each tick in the leader only, with its fencing token and due time', async () => {
    const h = await stores(3);
    const ticks: Array<{ who: number; token: number; at: Date }> = [];
    await Promise.all(
      h.workers.map((w, i) =>
        w.schedule(
          'every-second',
          '* * * * * *',
          (ctx) => {
            ticks.push({ who: i, token: ctx.fencingToken, at: ctx.scheduledAt });
          },
          { ttlMs: 1_000 },
        ),
      ),
    );
    await until(() => ticks.length >= 3, 6_000);
    expect(new Set(ticks.map((t) => t.who)).size).toBe(1);
    expect(new Set(ticks.map((t) => t.token)).size).toBe(1);
    // One tick per second, never two for the same second.
    const seconds = ticks.map((t) => t.at.getTime());
    expect(seconds.every((ms) => ms % 1_000 === 0)).toBe(true);
    expect(new Set(seconds).size).toBe(seconds.length);
  });

  it('a tick that throws is reported as JOB_FAILED and the schedule goes on', async () => {
    const h = await stores(1);
    const errors: BusError[] = [];
    h.workers[0]!.on('error', (e) => errors.push(e));
    let n = 0;
    const handle = await h.workers[0]!.schedule('bad-tick', '* * * * * *', () => {
      n++;
      throw new Error('tick failed');
    });
    await until(() => n >= 2, 5_000);
    expect(errors.filter((e) => e.code === 'JOB_FAILED').length).toBeGreaterThanOrEqual(1);
    expect(errors[0]!.message).toMatch(/schedule 'bad-tick' .* threw: tick failed/);
    expect(handle.isLeader).toBe(true);
    await handle.stop();
  });

  it('a tick due while the previous one still runs is skipped and reported (JOB_FAILED, data.skipped)', async () => {
    const h = await stores(1);
    const errors: BusError[] = [];
    h.workers[0]!.on('error', (e) => errors.push(e));
    let runs = 0;
    const handle = await h.workers[0]!.schedule('slow', '* * * * * *', async ({ signal }) => {
      runs++;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2_500);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });
    });
    await until(() => errors.some((e) => e.data?.skipped === true), 6_000);
    const skipped = errors.find((e) => e.data?.skipped === true)!;
    expect(skipped.code).toBe('JOB_FAILED');
    expect(skipped.message).toMatch(/a tick was skipped, the previous one was still running/);
    expect(runs).toBe(1);
    await handle.stop();
  });

  it("a leader that lost its lease runs no tick due after that; the next leader's ticks carry a larger token", async () => {
    const h = await stores(2);
    const ticks: Array<{ who: number; token: number; due: number }> = [];
    const handles = await Promise.all(
      h.workers.map((w, i) =>
        w.schedule(
          'paused',
          '* * * * * *',
          (ctx) => {
            ticks.push({ who: i, token: ctx.fencingToken, due: ctx.scheduledAt.getTime() });
          },
          { ttlMs: 600 },
        ),
      ),
    );
    await until(() => ticks.length >= 1, 5_000);
    const leader = ticks[0]!.who;
    // The leader's renewals stop reaching the primary: its lease ends ttlMs after the last one.
    h.pairs[leader]!.b.stalled = true;
    const stalledAt = Date.now();
    await until(
      () =>
        ticks.some((t) => t.who !== leader) && ticks.filter((t) => t.who !== leader).length >= 2,
      8_000,
    );
    const old = ticks.filter((t) => t.who === leader);
    const next = ticks.filter((t) => t.who !== leader);
    expect(handles[leader]!.isLeader).toBe(false);
    // Nothing due after its lease's end ran in the old leader.
    expect(Math.max(...old.map((t) => t.due))).toBeLessThan(stalledAt + 600);
    expect(Math.min(...next.map((t) => t.due))).toBeGreaterThan(Math.max(...old.map((t) => t.due)));
    expect(Math.min(...next.map((t) => t.token))).toBeGreaterThan(old[0]!.token);
    h.pairs[leader]!.b.resume();
  });

  it('rejects an expression croner refuses, and a bad tick, with INVALID_ARGUMENT', async () => {
    const h = await stores(1);
    const bus = h.workers[0]!;
    const never = await rejection(bus.schedule('s', '0 0 30 2 *', () => {}));
    expect(never.message).toMatch(/never due/);
    const zone = await rejection(
      bus.schedule('s', '* * * * *', () => {}, { timezone: 'Not/AZone' }),
    );
    expect(zone.code).toBe('INVALID_ARGUMENT');
    for (const cron of ['not a cron', '* * *', '61 * * * *', 42 as never]) {
      const error = await rejection(bus.schedule('s', cron, () => {}));
      expect(error.code, String(cron)).toBe('INVALID_ARGUMENT');
    }
    expect((await rejection(bus.schedule('s', '* * * * *', 'x' as never))).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect((await rejection(bus.schedule('s', '* * * * *', () => {}, { ttlMs: -1 }))).code).toBe(
      'INVALID_ARGUMENT',
    );
  });
});

describe('bus.schedule without croner', () => {
  it("rejects with NOT_INSTALLED naming the missing optional peer 'croner'", async () => {
    vi.resetModules();
    vi.doMock('croner', () => {
      throw new Error("Cannot find package 'croner'");
    });
    try {
      // A fresh module graph: its BusError is another class than this file's.
      const { loadCron } = await import('../../src/jobs/schedule.js');
      const error = await loadCron().then(
        () => undefined,
        (e: unknown) => e as BusError,
      );
      expect(error?.name).toBe('BusError');
      expect(error?.code).toBe('NOT_INSTALLED');
      expect(error?.data).toEqual({ module: 'croner' });
      expect(error?.message).toMatch(/optional peer dependency 'croner' \(npm install croner\)/);
    } finally {
      vi.doUnmock('croner');
      vi.resetModules();
    }
  });
});
