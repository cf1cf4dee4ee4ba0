/**
 * Shared stores over in-memory links: the host in the primary, clients in the primary and in
 * workers. Revisions, CAS, update, validation on both sides, TTL, bounds, watches.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type WorkerBus, workerBus } from '../../src/connect.js';
import { BusError, type Contract, defineContract } from '../../src/index.js';
import { primaryBus } from '../../src/primary-bus.js';
import { StoreHost, type StoreHostConfig } from '../../src/state/host.js';
import type { StoreChange } from '../../src/state/types.js';
import { memoryPair } from '../../src/transport/memory.js';
import { type Harness, harness, rejection, until } from './helpers.js';

const contract = defineContract({
  stores: {
    hits: z.number(),
    capped: z.number().int().max(10),
    sessions: z.object({ user: z.string(), at: z.date() }),
    names: z.string(),
    lists: z.array(z.string()),
  },
});
type C = typeof contract;

let h: Harness<C> | undefined;
let host: StoreHost | undefined;

afterEach(async () => {
  if (host !== undefined) {
    await host.close();
    host = undefined;
  }
  if (h !== undefined) {
    // Leak check: nothing pending anywhere once everything is closed.
    expect(await h.close()).toBe(0);
    h = undefined;
  }
});

async function start(count = 2, config: StoreHostConfig<C> = {}) {
  h = await harness(contract, count);
  host = await StoreHost.open(h.primary, config);
  return { h, host, primary: h.primary, workers: h.workers };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('get, set, entry, delete, keys', () => {
  it('reads what any process wrote, with one revision per change, per store', async () => {
    const { primary, workers } = await start();
    const [w1, w2] = workers as [WorkerBus<C>, WorkerBus<C>];
    expect(await w1.store('hits').get('a')).toBeUndefined();
    expect(await w1.store('hits').entry('a')).toBeUndefined();
    expect(await w1.store('hits').set('a', 1)).toBe(1);
    expect(await w2.store('hits').set('b', 2)).toBe(2);
    expect(await primary.store('hits').set('a', 3)).toBe(3);
    // Another store counts its own revisions.
    expect(await w2.store('names').set('a', 'x')).toBe(1);
    expect(await w2.store('hits').get('a')).toBe(3);
    expect(await primary.store('hits').entry('b')).toEqual({ value: 2, revision: 2 });
    expect(await w1.store('hits').keys()).toEqual(['a', 'b']);
    expect(await w1.store('hits').delete('a')).toBe(true);
    expect(await w1.store('hits').delete('a')).toBe(false); // nothing there: no change
    expect(await w1.store('hits').set('c', 5)).toBe(5); // the delete was revision 4
    expect(await primary.store('hits').keys({ prefix: 'c' })).toEqual(['c']);
  });

  it('returns the same proxy for the same name, and refuses a name not in the contract', async () => {
    const { primary } = await start(1);
    expect(primary.store('hits')).toBe(primary.store('hits'));
    expect(() => primary.store('nope' as 'hits')).toThrowError(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('copies values: a later mutation of the writer or reader object changes nothing stored', async () => {
    const { primary, workers } = await start(1);
    const lists = primary.store('lists');
    const value = ['a'];
    await lists.set('k', value);
    value.push('b');
    const read = await lists.get('k');
    read?.push('c');
    expect(await lists.get('k')).toEqual(['a']);
    expect(await workers[0]!.store('lists').get('k')).toEqual(['a']);
  });

  it('keeps Dates and other superjson types as they were written', async () => {
    const { primary, workers } = await start(1);
    const at = new Date('2024-01-02T03:04:05Z');
    await workers[0]!.store('sessions').set('s1', { user: 'ann', at });
    const got = await primary.store('sessions').get('s1');
    expect(got?.at).toBeInstanceOf(Date);
    expect(got?.at.getTime()).toBe(at.getTime());
  });

  it('rejects bad keys and options with INVALID_ARGUMENT, never synchronously', async () => {
    const { workers } = await start(1);
    const hits = workers[0]!.store('hits');
    const bad = [
      () => hits.get(''),
      () => hits.set('x'.repeat(1025), 1),
      () => hits.set('k', 1, { ttlMs: -1 }),
      () => hits.set('k', 1, { ifRevision: 1.5 }),
      () => hits.increment('k', Number.NaN),
      () => hits.keys({ prefix: 3 as unknown as string }),
      () => hits.update('k', 'no' as unknown as () => number),
    ];
    for (const call of bad) {
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = call();
      }).not.toThrow();
      expect((await rejection(promise!)).code).toBe('INVALID_ARGUMENT');
    }
  });
});

describe('validation', () => {
  it('validates writes in the primary (BAD_INPUT with issues) and changes nothing', async () => {
    const { primary, workers } = await start(1);
    const sessions = workers[0]!.store('sessions');
    await sessions.set('s', { user: 'ann', at: new Date() });
    const before = await primary.store('sessions').entry('s');
    const error = await rejection(
      sessions.set('s', { user: 42, at: new Date() } as unknown as { user: string; at: Date }),
    );
    expect(error.code).toBe('BAD_INPUT');
    expect(error.issues?.[0]?.path).toEqual(['user']);
    expect(error.message).toContain("store 'sessions' key 's'");
    expect(await primary.store('sessions').entry('s')).toEqual(before);
    // A value that fails the schema, by increment: the max of 'capped'.
    const capped = workers[0]!.store('capped');
    expect(await capped.increment('n', 10)).toBe(10);
    expect((await rejection(capped.increment('n'))).code).toBe('BAD_INPUT');
    expect(await capped.entry('n')).toEqual({ value: 10, revision: 1 });
  });

  it('validates reads in the reading process (BAD_OUTPUT) with its own schema', async () => {
    // The primary and the worker disagree on the schema (two versions of one contract).
    const loose = defineContract({ stores: { names: z.string() } });
    const strict = defineContract({ stores: { names: z.string().min(5) } });
    let connected!: () => void;
    const ready = new Promise<void>((r) => (connected = r));
    const primary = primaryBus(loose, {}, { connected: () => connected() });
    const pair = memoryPair();
    primary.attachLink(1, pair.a);
    const worker = workerBus(strict, pair.b, 1, {}, () => {});
    await ready;
    const local = await StoreHost.open(primary);
    try {
      await primary.store('names').set('k', 'abc');
      const error = await rejection(worker.store('names').get('k'));
      expect(error.code).toBe('BAD_OUTPUT');
      expect(error.message).toContain("store 'names' key 'k'");
      // A watcher is told through the bus's error event, and the change skipped.
      const errors: BusError[] = [];
      worker.on('error', (e) => errors.push(e));
      const seen: unknown[] = [];
      const off = worker.store('names').watch((c) => seen.push(c));
      await off.ready;
      await primary.store('names').set('k', 'xy');
      await primary.store('names').set('k', 'long enough');
      await until(() => seen.length === 1);
      expect(errors.map((e) => e.code)).toEqual(['BAD_OUTPUT']);
      off();
    } finally {
      await local.close();
      await worker.close();
      await primary.close();
    }
  });

  it('names the caller line in the stack of a rejection', async () => {
    const { workers } = await start(1);
    const hits = workers[0]!.store('hits');
    await hits.set('k', 1);
    const error = await rejection(hits.set('k', 2, { ifRevision: 7 }));
    expect(error.code).toBe('CONFLICT');
    expect(error.stack).toContain('store.test.ts');
  });
});

describe('increment', () => {
  it('starts a missing key at 0, adds any finite number, and is atomic under concurrency', async () => {
    const { primary, workers } = await start(2);
    const hits = workers[0]!.store('hits');
    expect(await hits.increment('a')).toBe(1);
    expect(await hits.increment('a', -3)).toBe(-2);
    expect(await hits.increment('b', 2.5)).toBe(2.5);
    await Promise.all(
      [...workers, primary].flatMap((bus) =>
        Array.from({ length: 300 }, () => bus.store('hits').increment('c')),
      ),
    );
    expect(await primary.store('hits').entry('c')).toEqual({ value: 900, revision: 903 });
  });

  it('rejects a store that is not of numbers, or an entry that is not a number, with INVALID_ARGUMENT', async () => {
    const { workers } = await start(1);
    const names = workers[0]!.store('names') as unknown as {
      increment(key: string): Promise<number>;
    };
    expect((await rejection(names.increment('k'))).code).toBe('INVALID_ARGUMENT');
    expect(await workers[0]!.store('names').keys()).toEqual([]);
  });

  it('gives a created counter its ttlMs and keeps the expiry of an existing one', async () => {
    const { workers } = await start(1);
    const hits = workers[0]!.store('hits');
    const t0 = Date.now();
    await hits.increment('w', 1, { ttlMs: 60_000 });
    const first = await hits.entry('w');
    expect(first?.expiresAt).toBeGreaterThanOrEqual(t0 + 60_000);
    await hits.increment('w', 1, { ttlMs: 120_000 });
    expect((await hits.entry('w'))?.expiresAt).toBe(first?.expiresAt);
    // set replaces the whole entry: no ttlMs, no expiry.
    await hits.set('w', 0);
    expect((await hits.entry('w'))?.expiresAt).toBeUndefined();
  });
});

describe('compare-and-set and update', () => {
  it('writes with ifRevision only at that revision, else CONFLICT and nothing changes', async () => {
    const { primary, workers } = await start(2);
    const [a, b] = [workers[0]!.store('hits'), workers[1]!.store('hits')];
    const r1 = await a.set('k', 1);
    const results = await Promise.allSettled([
      a.set('k', 10, { ifRevision: r1 }),
      b.set('k', 20, { ifRevision: r1 }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(((lost[0] as PromiseRejectedResult).reason as BusError).code).toBe('CONFLICT');
    const entry = await primary.store('hits').entry('k');
    expect(entry?.value).toBe(results[0]!.status === 'fulfilled' ? 10 : 20);
    expect(entry?.revision).toBe(r1 + 1);
    // ifRevision 0: only if the key does not exist.
    expect((await rejection(a.set('k', 5, { ifRevision: 0 }))).code).toBe('CONFLICT');
    expect(await a.set('new', 5, { ifRevision: 0 })).toBe(r1 + 2);
    // delete with ifRevision.
    const err = await rejection(a.delete('new', { ifRevision: r1 }));
    expect(err.code).toBe('CONFLICT');
    expect(err.message).toContain(`revision ${r1 + 2}`);
    expect(await a.delete('new', { ifRevision: r1 + 2 })).toBe(true);
  });

  it('update loses no write under contention from every process', async () => {
    const { primary, workers } = await start(3);
    const buses = [primary, ...workers];
    await Promise.all(
      buses.flatMap((bus, p) =>
        Array.from({ length: 20 }, (_, i) =>
          bus.store('lists').update('log', (old) => [...(old ?? []), `${p}:${i}`]),
        ),
      ),
    );
    const log = await primary.store('lists').get('log');
    expect(log).toHaveLength(80);
    expect(new Set(log).size).toBe(80);
  });

  it('update resolves with the entry written, runs an async fn, and passes its throw as it is', async () => {
    const { workers } = await start(1);
    const hits = workers[0]!.store('hits');
    const written = await hits.update('k', async (old, entry) => {
      expect(entry).toBeUndefined();
      await sleep(1);
      return (old ?? 0) + 5;
    });
    expect(written).toEqual({ value: 5, revision: 1 });
    const mine = new Error('mine');
    await expect(
      hits.update('k', () => {
        throw mine;
      }),
    ).rejects.toBe(mine);
  });

  it('runs the updates of one key one at a time within a process: no retry among them', async () => {
    const { workers } = await start(1);
    const hits = workers[0]!.store('hits');
    let running = 0;
    let most = 0;
    let calls = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        hits.update('k', async (old) => {
          calls++;
          running++;
          most = Math.max(most, running);
          await sleep(1);
          running--;
          return (old ?? 0) + 1;
        }),
      ),
    );
    expect(await hits.get('k')).toBe(20);
    expect(most).toBe(1);
    expect(calls).toBe(20);
  });

  it('lets a nested update of the same key through instead of deadlocking', async () => {
    const { workers } = await start(1);
    const hits = workers[0]!.store('hits');
    const outer = hits.update(
      'k',
      async (old) => {
        await hits.update('k', (o) => (o ?? 0) + 1);
        return (old ?? 0) + 100;
      },
      { maxAttempts: 2 },
    );
    expect((await rejection(outer)).code).toBe('CONFLICT'); // the inner one always wins
    expect(await hits.get('k')).toBe(2);
  });

  it('an update waiting behind another one of its process can be aborted', async () => {
    const { workers } = await start(1);
    const hits = workers[0]!.store('hits');
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const first = hits.update('k', async () => {
      await gate;
      return 1;
    });
    const controller = new AbortController();
    const second = hits.update('k', () => 2, { signal: controller.signal });
    controller.abort();
    expect((await rejection(second)).code).toBe('ABORTED');
    release();
    expect((await first).value).toBe(1);
    expect(await hits.update('k', (old) => (old ?? 0) + 1)).toMatchObject({ value: 2 });
  });

  it('update gives up with CONFLICT after maxAttempts', async () => {
    const { workers } = await start(1);
    const hits = workers[0]!.store('hits');
    let calls = 0;
    const error = await rejection(
      hits.update(
        'k',
        async (old) => {
          calls++;
          await hits.increment('k'); // someone else always writes first
          return (old ?? 0) + 100;
        },
        { maxAttempts: 3 },
      ),
    );
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toContain('after 3 attempts');
    expect(calls).toBe(3);
    expect(await hits.get('k')).toBe(3);
  });
});

describe('TTL', () => {
  it('expires entries with the one sweep timer and tells watchers, with a revision', async () => {
    const { primary, workers } = await start(1);
    const seen: StoreChange<number>[] = [];
    const off = workers[0]!.store('hits').watch({ prefix: 't:' }, (c) => seen.push(c));
    await off.ready;
    await primary.store('hits').set('t:a', 1, { ttlMs: 30 });
    await primary.store('hits').set('t:b', 2, { ttlMs: 10_000 });
    await until(() => seen.length === 3);
    expect(seen.map((c) => [c.key, c.op, c.revision])).toEqual([
      ['t:a', 'set', 1],
      ['t:b', 'set', 2],
      ['t:a', 'expire', 3],
    ]);
    expect(await primary.store('hits').keys()).toEqual(['t:b']);
    off();
  });

  it('treats an expired entry as absent on read even before the sweep runs', async () => {
    const { workers } = await start(1);
    const hits = workers[0]!.store('hits');
    await hits.set('k', 1, { ttlMs: 15 });
    await sleep(25);
    expect(await hits.get('k')).toBeUndefined();
    expect(await hits.set('k', 2, { ifRevision: 0 })).toBe(3); // set 1, expire 2, set 3
  });

  it('keeps one heap item per TTL write bounded by rebuilding', async () => {
    const { workers } = await start(1);
    const hits = workers[0]!.store('hits');
    for (let i = 0; i < 3_000; i++) void hits.set('same', i, { ttlMs: 60_000 });
    await hits.get('same');
    expect(host!.expiry.size).toBeLessThan(1_100);
  });
});

describe('maxEntries', () => {
  it('rejects a new key past maxEntries with STORE_FULL and leaves the store as it was', async () => {
    const { workers } = await start(1, { maxEntries: 3, limits: { names: { maxEntries: 1 } } });
    const hits = workers[0]!.store('hits');
    for (const k of ['a', 'b', 'c']) await hits.set(k, 1);
    const before = { keys: await hits.keys(), entry: await hits.entry('c') };
    for (const write of [
      () => hits.set('d', 1),
      () => hits.increment('d'),
      () => hits.update('d', () => 1),
    ]) {
      const error = await rejection(write());
      expect(error.code).toBe('STORE_FULL');
      expect(error.message).toContain('maxEntries 3');
    }
    expect({ keys: await hits.keys(), entry: await hits.entry('c') }).toEqual(before);
    expect(await hits.set('a', 2)).toBe(4); // an existing key can still be written
    await hits.delete('a');
    expect(await hits.set('d', 1)).toBe(6);
    // Per-store limit.
    const names = workers[0]!.store('names');
    await names.set('x', 'x');
    expect((await rejection(names.set('y', 'y'))).code).toBe('STORE_FULL');
  });

  it('counts an expired entry as gone when the store is full', async () => {
    const { workers } = await start(1, { maxEntries: 1 });
    const hits = workers[0]!.store('hits');
    await hits.set('old', 1, { ttlMs: 10 });
    await sleep(20);
    expect(await hits.set('new', 1)).toBe(3);
  });
});

describe('watch', () => {
  it('delivers only matching changes, in revision order, only to the processes that watch', async () => {
    const { primary, workers } = await start(2);
    const [w1, w2] = workers as [WorkerBus<C>, WorkerBus<C>];
    const byPrefix: StoreChange<number>[] = [];
    const byKey: StoreChange<number>[] = [];
    const inPrimary: StoreChange<number>[] = [];
    const offs = [
      w1.store('hits').watch({ prefix: 'GET ' }, (c) => byPrefix.push(c)),
      w1.store('hits').watch({ key: 'GET /a' }, (c) => byKey.push(c)),
      primary.store('hits').watch((c) => inPrimary.push(c)),
    ];
    await Promise.all(offs.map((o) => o.ready));
    await Promise.all([
      w2.store('hits').increment('GET /a'),
      w2.store('hits').increment('POST /b'),
      primary.store('hits').set('GET /c', 3),
      w1.store('hits').increment('GET /a'),
    ]);
    await w2.store('hits').delete('GET /a');
    await until(() => inPrimary.length === 5 && byPrefix.length === 4);
    const revisions = (cs: StoreChange<number>[]) => cs.map((c) => c.revision);
    for (const cs of [byPrefix, byKey, inPrimary]) {
      expect(revisions(cs)).toEqual([...revisions(cs)].sort((a, b) => a - b));
    }
    expect(byPrefix.every((c) => c.key.startsWith('GET '))).toBe(true);
    expect(byKey.map((c) => c.op)).toEqual(['set', 'set', 'delete']);
    expect(byKey.at(-1)).toEqual({ key: 'GET /a', op: 'delete', revision: 5 });
    expect(host!.stats().watchers).toEqual(expect.arrayContaining([1, 'primary']));
    expect(host!.stats().watchers).not.toContain(2);
    for (const off of offs) off();
    await until(() => host!.stats().watches === 0);
  });

  it("delivers a process's own write before that write resolves", async () => {
    const { primary, workers } = await start(1);
    for (const bus of [workers[0]!, primary]) {
      const seen: number[] = [];
      const off = bus.store('hits').watch({ key: 'mine' }, (c) => seen.push(c.revision));
      await off.ready;
      const revision = await bus
        .store('hits')
        .increment('mine')
        .then(() => seen.at(-1));
      expect(revision).toBeDefined();
      off();
    }
  });

  it('starts with a snapshot of the matching entries when initial is set, then goes live', async () => {
    const { primary, workers } = await start(1);
    const hits = primary.store('hits');
    await hits.set('p:b', 1);
    await hits.set('p:a', 2);
    await hits.set('q', 3);
    await hits.set('p:b', 4);
    const seen: StoreChange<number>[] = [];
    const off = workers[0]!
      .store('hits')
      .watch({ prefix: 'p:', initial: true }, (c) => seen.push(c));
    expect(await off.ready).toBe(4);
    await hits.set('p:c', 5);
    await until(() => seen.length === 3);
    expect(seen.map((c) => [c.key, c.value, c.revision])).toEqual([
      ['p:a', 2, 2],
      ['p:b', 4, 4],
      ['p:c', 5, 5],
    ]);
    off();
  });

  it('drops the watches of a worker whose link is cut, or whose bus closed', async () => {
    const { h, primary, workers } = await start(3);
    for (const w of workers) await w.store('hits').watch(() => {}).ready;
    expect(host!.stats().watches).toBe(3);
    h.kill(0);
    await until(() => host!.stats().watches === 2);
    await workers[1]!.close();
    await until(() => host!.stats().watches === 1);
    expect(host!.stats().watchers).toEqual([3]);
    await primary.store('hits').set('k', 1); // still delivered to worker 3, and nothing breaks
  });

  it('reports a watcher that throws as SUBSCRIBER_FAILED, and keeps delivering', async () => {
    const { workers } = await start(1);
    const w = workers[0]!;
    const errors: BusError[] = [];
    w.on('error', (e) => errors.push(e));
    const seen: number[] = [];
    const off = w.store('hits').watch((c) => {
      seen.push(c.revision);
      throw new Error('watcher bug');
    });
    await off.ready;
    await w.store('hits').set('a', 1);
    await w.store('hits').set('a', 2);
    await until(() => seen.length === 2);
    expect(errors.map((e) => e.code)).toEqual(['SUBSCRIBER_FAILED', 'SUBSCRIBER_FAILED']);
    off();
  });

  it('refuses bad watch arguments synchronously, and a closed bus with CLOSED', async () => {
    const { workers } = await start(1);
    const hits = workers[0]!.store('hits');
    expect(() => hits.watch({ key: 'a', prefix: 'b' }, () => {})).toThrowError(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => hits.watch({}, undefined as unknown as () => void)).toThrowError(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    await workers[0]!.close();
    expect(() => hits.watch(() => {})).toThrowError(expect.objectContaining({ code: 'CLOSED' }));
  });
});

describe('a contract without stores', () => {
  it('still serves locks, and store() refuses every name', async () => {
    const bare: Contract = defineContract({});
    const hb = await harness(bare, 1);
    const local = await StoreHost.open(hb.primary);
    try {
      const lease = await hb.workers[0]!.lock('x');
      expect(await lease.release()).toBe(true);
      expect(() => hb.primary.store('x' as never)).toThrow(BusError);
    } finally {
      await local.close();
      expect(await hb.close()).toBe(0);
    }
  });
});
