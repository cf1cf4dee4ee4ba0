/**
 * The thread pool on real worker threads: typed calls, structured-clone values, errors across the
 * thread boundary, transfer, pub/sub, callAll, scheduling and the queue bound.
 */

import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { BusError, RemoteError } from '../../src/errors.js';
import {
  closePools,
  connectThread,
  createPool,
  poolStats,
  type ThreadCallOptions,
} from '../../src/threads/index.js';
import { rejection, until } from './fixtures/common.js';
import { fixturePath } from './fixtures/threads/boot.js';
import { closePool, contract, type FixturePool, fixture, startPool } from './threads-helpers.js';

let pool: FixturePool | undefined;
afterEach(async () => {
  await closePool(pool);
  pool = undefined;
});

describe('calls', () => {
  it('answers a typed call on any thread and on a thread index', async () => {
    pool = await startPool();
    const any = await pool.call('any', 'echo', { text: 'hi' });
    expect(any.text).toBe('hi');
    const one = await pool.call(1, 'echo', { text: 'there' });
    expect(one.thread).toBe(1);
    const zero = await pool.call(0, 'echo', { text: 'there' });
    expect(zero.thread).toBe(0);
    expect(zero.threadId).not.toBe(one.threadId);
    expect(await pool.call('any', 'add', { a: 2, b: 3 })).toBe(5);
  });

  it('carries Map, Set, Date, BigInt and typed arrays by structured clone', async () => {
    pool = await startPool({ threads: 1 });
    const input = {
      map: new Map([['a', 1]]),
      set: new Set([1, 2]),
      date: new Date(1_700_000_000_000),
      big: 2n ** 70n,
      bytes: new Uint8Array([1, 2, 3]),
    };
    const out = await pool.call('any', 'values', input);
    expect(out.map).toEqual(input.map);
    expect(out.set).toEqual(input.set);
    expect(out.date.getTime()).toBe(input.date.getTime());
    expect(out.big).toBe(input.big);
    expect([...out.bytes]).toEqual([1, 2, 3]);
  });

  it('copies the input when the call is issued: a later mutation does not reach the thread', async () => {
    pool = await startPool({ threads: 1 });
    const input = { text: 'before' };
    const answer = pool.call('any', 'echo', input);
    input.text = 'after';
    expect((await answer).text).toBe('before');
  });

  it('spreads calls to any over the threads with the fewest in flight', async () => {
    pool = await startPool({ threads: 2 });
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => pool!.call('any', 'burn', { ms: 20 }).then(() => 1)),
    );
    expect(answers).toHaveLength(8);
    const served = pool.stats().perThread.map((t) => t.callsServed);
    expect(served[0]).toBeGreaterThanOrEqual(3);
    expect(served[1]).toBeGreaterThanOrEqual(3);
  });

  it('refuses a bad target, an unknown method and bad options, without throwing synchronously', async () => {
    pool = await startPool({ threads: 1 });
    const p = pool;
    expect((await rejection(p.call(1, 'add', { a: 1, b: 1 }))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(p.call(-1, 'add', { a: 1, b: 1 }))).code).toBe('INVALID_ARGUMENT');
    // @ts-expect-error: not a method of the contract
    expect((await rejection(p.call('any', 'nope'))).code).toBe('INVALID_ARGUMENT');
    const bad = { timeoutMs: -5 };
    expect((await rejection(p.call('any', 'add', { a: 1, b: 1 }, bad))).code).toBe(
      'INVALID_ARGUMENT',
    );
    const notList = { transfer: 'x' } as unknown as ThreadCallOptions;
    expect((await rejection(p.call('any', 'add', { a: 1, b: 1 }, notList))).code).toBe(
      'INVALID_ARGUMENT',
    );
    const fn = { text: (() => 1) as unknown as string };
    const refused = await rejection(p.call('any', 'echo', fn));
    expect(refused.code).toBe('INVALID_ARGUMENT');
    expect(refused.message).toMatch(/cannot be copied/);
    expect(await p.call('any', 'add', { a: 1, b: 1 })).toBe(2);
  });

  it('rejects a result structured clone cannot copy with BAD_OUTPUT; the thread stays', async () => {
    pool = await startPool({ threads: 1 });
    const error = await rejection(pool.call('any', 'uncloneable'));
    expect(error.code).toBe('BAD_OUTPUT');
    expect(error.message).toMatch(/cannot be copied/);
    expect(await pool.call('any', 'add', { a: 1, b: 2 })).toBe(3);
    expect(pool.stats().restarts).toBe(0);
  });

  it('answers NO_HANDLER for a method the thread does not handle', async () => {
    pool = await startPool({ threads: 1 });
    const error = await rejection(pool.call('any', 'unhandled'));
    expect(error.code).toBe('NO_HANDLER');
    expect(error.message).toContain("'unhandled'");
  });
});

describe('errors across the thread boundary', () => {
  it('rejects a bad input with BAD_INPUT and zod issues, validated in the thread', async () => {
    pool = await startPool({ threads: 1 });
    const error = await rejection(pool.call('any', 'add', { a: 'x' as unknown as number, b: 1 }));
    expect(error).toBeInstanceOf(BusError);
    expect(error.code).toBe('BAD_INPUT');
    expect(error.issues).toEqual([expect.objectContaining({ code: 'invalid_type', path: ['a'] })]);
    expect(error.message).toContain('thread 0');
  });

  it('rejects with REMOTE carrying the handler error name, message, stack, code and data', async () => {
    pool = await startPool({ threads: 1 });
    const error = await rejection(pool.call('any', 'fail', { message: 'no such row' }));
    expect(error.code).toBe('REMOTE');
    const cause = error.cause as RemoteError;
    expect(cause).toBeInstanceOf(RemoteError);
    expect(cause.name).toBe('TypeError');
    expect(cause.message).toBe('no such row');
    expect(cause.code).toBe('E_FIXTURE');
    expect(cause.data).toEqual({ status: 418 });
    expect(cause.stack).toContain(fixturePath('worker.ts'));
    // The rejection's own stack names this test file, where the call was issued.
    expect(error.stack).toContain('threads.test.ts');
  });

  it('rejects a result that fails the output schema with BAD_OUTPUT, validated by the caller', async () => {
    pool = await startPool({ threads: 1 });
    const error = await rejection(pool.call('any', 'badOutput'));
    expect(error.code).toBe('BAD_OUTPUT');
    expect(error.issues?.[0]?.path).toEqual(['ok']);
  });
});

describe('transfer', () => {
  it('moves an ArrayBuffer: the sender’s buffer is detached after the call', async () => {
    pool = await startPool({ threads: 1 });
    const buf = new Uint8Array(1024 * 1024).fill(2).buffer;
    const answer = await pool.call('any', 'sum', { buf }, { transfer: [buf] });
    expect(answer).toEqual({ bytes: 1024 * 1024, sum: 2 * 1024 * 1024 });
    expect(buf.byteLength).toBe(0);
  });

  it('copies the buffer without transfer (the sender keeps it)', async () => {
    pool = await startPool({ threads: 1 });
    const buf = new Uint8Array(16).fill(1).buffer;
    expect(await pool.call('any', 'sum', { buf })).toEqual({ bytes: 16, sum: 16 });
    expect(buf.byteLength).toBe(16);
  });
});

describe('publish and callAll', () => {
  it('publishes to every thread; callAll reaches every thread, in index order', async () => {
    pool = await startPool({ threads: 3 });
    pool.publish('rules.changed', { version: 7 });
    const all = await pool.callAll('version');
    expect(all).toEqual([
      { thread: 0, status: 'fulfilled', value: 7 },
      { thread: 1, status: 'fulfilled', value: 7 },
      { thread: 2, status: 'fulfilled', value: 7 },
    ]);
  });

  it('refuses an invalid payload synchronously with BAD_PAYLOAD and issues', async () => {
    pool = await startPool({ threads: 1 });
    let error: unknown;
    try {
      pool.publish('rules.changed', { version: 1.5 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BusError);
    expect((error as BusError).code).toBe('BAD_PAYLOAD');
    expect((error as BusError).issues?.[0]?.path).toEqual(['version']);
  });

  it('callAll refuses transfer with INVALID_ARGUMENT', async () => {
    pool = await startPool({ threads: 1 });
    const buf = new ArrayBuffer(8);
    const error = await rejection(pool.callAll('sum', { buf }, { transfer: [buf] }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(buf.byteLength).toBe(8);
  });

  it('callAll settles each thread on its own: one failure does not fail the others', async () => {
    pool = await startPool({ threads: 2 });
    const all = await pool.callAll('add', { a: 1, b: 1 });
    expect(all.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    const failed = await pool.callAll('fail', { message: 'x' });
    expect(failed.map((r) => r.status === 'rejected' && r.error.code)).toEqual([
      'REMOTE',
      'REMOTE',
    ]);
  });
});

describe('in the thread', () => {
  it('reports a subscriber that throws as SUBSCRIBER_FAILED on the thread bus; a second connectThread is refused', async () => {
    pool = await startPool({ threads: 1 });
    pool.publish('boom', {});
    const seen = await until(
      () => pool!.call(0, 'seen'),
      (s) => s.errors.length > 0,
      'the thread’s error event',
    );
    expect(seen.errors).toEqual(['SUBSCRIBER_FAILED']);
    expect(seen.secondConnect).toBe('INVALID_ARGUMENT');
  });

  it('aborts the handler’s signal with a BusError ABORTED as its reason', async () => {
    pool = await startPool({ threads: 1 });
    const controller = new AbortController();
    const call = rejection(pool.call(0, 'wait', { ms: 60_000 }, { signal: controller.signal }));
    await until(
      () => pool!.stats().inFlight,
      (n) => n === 1,
      'the call in flight',
    );
    controller.abort();
    await call;
    const seen = await until(
      () => pool!.call(0, 'seen'),
      (s) => s.abortReason !== '',
      'the abort',
    );
    expect(seen.abortReason).toBe('ABORTED');
  });
});

describe('the queue bound', () => {
  it('queues past maxInFlightPerThread and rejects with OVERLOADED past maxQueue', async () => {
    pool = await startPool({ threads: 1, maxInFlightPerThread: 1, maxQueue: 2 });
    const first = pool.call('any', 'wait', { ms: 300 });
    const queued = [pool.call('any', 'wait', { ms: 1 }), pool.call(0, 'wait', { ms: 1 })];
    expect(pool.stats()).toMatchObject({ threads: 1, busy: 1, queued: 2, inFlight: 1 });
    const over = await rejection(pool.call('any', 'add', { a: 1, b: 1 }));
    expect(over.code).toBe('OVERLOADED');
    expect(over.data).toEqual({ limit: 'maxQueue', value: 2 });
    expect(await first).toBe('done');
    expect(await Promise.all(queued)).toEqual(['done', 'done']);
    expect(pool.stats()).toMatchObject({ busy: 0, queued: 0, callsServed: 3 });
  });

  it('times out a call while it waits in the queue, and aborts one', async () => {
    pool = await startPool({ threads: 1, maxInFlightPerThread: 1 });
    const first = pool.call('any', 'wait', { ms: 400 });
    const late = rejection(pool.call('any', 'add', { a: 1, b: 1 }, { timeoutMs: 50 }));
    const controller = new AbortController();
    const aborted = rejection(
      pool.call('any', 'add', { a: 1, b: 1 }, { signal: controller.signal }),
    );
    controller.abort();
    expect((await aborted).code).toBe('ABORTED');
    const timedOut = await late;
    expect(timedOut.code).toBe('TIMEOUT');
    expect(timedOut.message).toContain('waiting for a thread');
    expect(pool.stats().queued).toBe(0);
    expect(await first).toBe('done');
  });
});

describe('options, registry and a hostile thread', () => {
  it('close is idempotent, resolves closed, and is Symbol.asyncDispose; closePools closes every pool', async () => {
    const a = await startPool({ threads: 1, name: 'a' });
    const b = await startPool({ threads: 1, name: 'b' });
    expect(a.close()).toBe(a.close());
    await a.closed;
    await b[Symbol.asyncDispose]();
    expect(b.runningThreads).toBe(0);
    pool = await startPool({ threads: 1, name: 'c' });
    await closePools();
    expect(pool.runningThreads).toBe(0);
    expect((await rejection(pool.call(0, 'add', { a: 1, b: 1 }))).code).toBe('CLOSED');
  });

  it('passes workerData to each thread; poolStats() lists the pool while it is open', async () => {
    pool = await startPool({ threads: 1, workerData: { region: 'eu' }, name: 'validators' });
    expect(await pool.call(0, 'data')).toEqual({ region: 'eu' });
    expect(poolStats().map((s) => s.name)).toContain('validators');
    await pool.close();
    expect(poolStats().map((s) => s.name)).not.toContain('validators');
  });

  it('reports the malformed frames of a hostile thread as PROTOCOL and keeps serving', async () => {
    const seen: BusError[] = [];
    pool = await startPool({ threads: 1, file: fixture('hostile.ts') });
    pool.on('error', (e) => seen.push(e));
    expect((await pool.call(0, 'echo', { text: 'x' })).threadId).toBe(-1);
    await until(
      () => seen.filter((e) => e.code === 'PROTOCOL').length,
      (n) => n >= 3,
      'three PROTOCOL reports',
    );
    expect(await pool.call(0, 'add', { a: 2, b: 2 })).toBe(4);
    expect(pool.stats()).toMatchObject({ restarts: 0, inFlight: 0 });
  });
});

describe('startup', () => {
  it('rejects createPool with the error a thread throws at start, twice in a row', async () => {
    const error = await rejection(
      createPool({ contract, file: fixture('throws-at-start.ts'), threads: 2 }),
    );
    expect(error.code).toBe('STARTUP_FAILED');
    expect(error.message).toContain('boom at start');
    expect((error.cause as Error).message).toBe('boom at start');
    expect(error.data).toMatchObject({ exitCode: 1 });
  });

  it('rejects createPool with CONTRACT_MISMATCH when a thread connects with another contract', async () => {
    const error = await rejection(
      createPool({ contract, file: fixture('other-contract.ts'), threads: 1 }),
    );
    expect(error.code).toBe('CONTRACT_MISMATCH');
  });

  it('rejects createPool with STARTUP_FAILED when a thread never connects', async () => {
    const error = await rejection(
      createPool({
        contract,
        file: fixture('never-connects.ts'),
        threads: 1,
        startTimeoutMs: 1_500,
      }),
    );
    expect(error.code).toBe('STARTUP_FAILED');
    expect(error.message).toContain('connectThread');
  });

  it('names the cause when a .ts thread runs without a loader (Node 20 threads do not inherit tsx)', async () => {
    const file = new URL('./fixtures/threads/plain.ts', import.meta.url);
    const error = await rejection(createPool({ contract, file, threads: 1 }));
    expect(error.code).toBe('STARTUP_FAILED');
    if (Number(process.versions.node.split('.')[0]) < 22) {
      expect(error.message).toContain('ERR_UNKNOWN_FILE_EXTENSION');
      expect(error.message).toContain('docs/threads.md');
    }
  });

  it('connectThread in a thread no pool started rejects with TIMEOUT, and lets the thread end', async () => {
    const worker = new Worker(fixture('standalone-connect.ts'));
    // Its hello frame comes first (nobody here answers it), then the fixture's own message.
    const answer = await new Promise<{ code?: string; message?: string }>((resolve) => {
      worker.on('message', (m: { code?: string; $cb?: number }) => {
        if (m.$cb === undefined) resolve(m);
      });
    });
    expect(answer.code).toBe('TIMEOUT');
    expect(answer.message).toContain('createPool');
    // Nothing holds the thread any more: it ends on its own.
    const exitCode = await new Promise<number>((resolve) => worker.once('exit', resolve));
    expect(exitCode).toBe(0);
  });

  it('connectThread in the main thread rejects with INVALID_ARGUMENT', async () => {
    expect((await rejection(connectThread(contract))).code).toBe('INVALID_ARGUMENT');
  });

  it('rejects bad options with INVALID_ARGUMENT', async () => {
    const bad = [
      { threads: 0 },
      { maxQueue: -1 },
      { abortGraceMs: Number.NaN },
      { file: 42 as unknown as string },
    ];
    for (const options of bad) {
      const error = await rejection(
        createPool({ contract, file: fixture('worker.ts'), ...options }),
      );
      expect(error.code, JSON.stringify(options)).toBe('INVALID_ARGUMENT');
    }
  });
});
