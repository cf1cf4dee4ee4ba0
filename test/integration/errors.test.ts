/**
 * Every way a call fails, over real IPC: validation (BAD_INPUT, BAD_OUTPUT), handler throws
 * (REMOTE), TIMEOUT and ABORTED (and the remote handler's signal), NO_TARGET, INVALID_ARGUMENT,
 * stacks that name the caller's line, and messages on the IPC channel that are not ours or are
 * malformed.
 */
import cluster from 'node:cluster';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BusError, RemoteError } from '../../src/index.js';
import {
  type App,
  expectStackAt,
  lineHere,
  rejection,
  start,
  stop,
  until,
  workerIds,
} from './helpers.js';

const FILE = 'errors.test.ts';
let app: App;
let w1: number;
let w2: number;

beforeAll(async () => {
  app = await start({ workers: 2 });
  [w1, w2] = workerIds(app) as [number, number];
});

afterEach(async () => {
  expect(app.bus.pendingCount).toBe(0);
  const pending = await app.bus.callAll('pending');
  expect(pending.map((r) => (r.status === 'fulfilled' ? r.value : r.error.code))).toEqual([0, 0]);
});

afterAll(() => stop(app));

/** The number of times worker `id` has started `method`. */
async function startedCount(id: number, method: string): Promise<number> {
  return (await app.bus.call(id, 'started'))[method] ?? 0;
}

/** Waits until worker `id`'s abortLog has more than `before` entries; returns the new ones. */
async function newAborts(id: number, before: number): Promise<string[]> {
  const log = await until(
    () => app.bus.call(id, 'abortLog'),
    (entries) => entries.length > before,
    `worker ${id}'s handler signal aborts`,
  );
  return log.slice(before);
}

describe('validation', () => {
  it('rejects an invalid input with BAD_INPUT and zod issues (path, code)', async () => {
    const error = await rejection(
      app.bus.call(w1, 'add', { a: 'x', b: 1 } as unknown as { a: number; b: number }),
    );
    expect(error).toBeInstanceOf(BusError);
    expect(error.code).toBe('BAD_INPUT');
    expect(error.message).toContain("'add'");
    expect(error.issues).toEqual([
      expect.objectContaining({ path: ['a'], code: 'invalid_type', message: expect.any(String) }),
    ]);
  });

  it('reports every issue of an input, each with its path', async () => {
    const error = await rejection(
      app.bus.call(w2, 'fail', { message: 1, code: 2 } as unknown as { message: string }),
    );
    expect(error.code).toBe('BAD_INPUT');
    expect(error.issues?.map((i) => [i.path, i.code])).toEqual([
      [['message'], 'invalid_type'],
      [['code'], 'invalid_type'],
    ]);
  });

  it('rejects an invalid input of a worker -> worker call with BAD_INPUT in the caller', async () => {
    const outcome = await app.bus.call(w1, 'relay', {
      target: w2,
      method: 'add',
      input: { a: 1 },
    });
    expect(outcome).toMatchObject({ ok: false, code: 'BAD_INPUT' });
  });

  it("rejects a result that fails the output schema with BAD_OUTPUT and zod's issues", async () => {
    const error = await rejection(app.bus.call(w1, 'badOutput'));
    expect(error.code).toBe('BAD_OUTPUT');
    expect(error.message).toContain("'badOutput'");
    expect(error.issues).toEqual([expect.objectContaining({ path: [], code: 'invalid_type' })]);
  });
});

describe('handler throws: REMOTE', () => {
  it("carries the original error's name, message, stack and own code as a RemoteError cause", async () => {
    const error = await rejection(app.bus.call(w1, 'fail', { message: 'boom', code: 'E_BOOM' }));
    expect(error.code).toBe('REMOTE');
    expect(error.message).toContain("handler 'fail'");
    expect(error.message).toContain(`worker ${w1}`);
    expect(error.message).toContain('boom');
    const cause = error.cause;
    expect(cause).toBeInstanceOf(RemoteError);
    if (!(cause instanceof RemoteError)) return;
    expect(cause.name).toBe('TypeError');
    expect(cause.message).toBe('boom');
    expect(cause.code).toBe('E_BOOM');
    // The remote stack, as the worker printed it: it names the fixture's throw site.
    expect(cause.stack).toMatch(/^TypeError: boom\n/);
    expect(cause.stack).toContain('fixtures/worker.ts');
  });

  it('leaves code undefined when the original error had none', async () => {
    const error = await rejection(app.bus.call(w2, 'fail', { message: 'no code' }));
    expect(error.code).toBe('REMOTE');
    expect((error.cause as RemoteError).code).toBeUndefined();
    expect((error.cause as RemoteError).message).toBe('no code');
  });

  it.each([
    ['string', /a plain string/],
    ['undefined', /undefined/],
    ['getter', /threw/],
  ] as const)('gives a readable REMOTE message when the handler throws a %s', async (kind, text) => {
    const error = await rejection(app.bus.call(w1, 'throwValue', kind));
    expect(error.code).toBe('REMOTE');
    expect(error.message).toMatch(new RegExp(`^handler 'throwValue' on worker ${w1} threw `));
    expect(error.message).toMatch(text);
    expect(error.message).not.toContain('[object Object]');
    expect(error.cause).toBeInstanceOf(RemoteError);
    expect(typeof (error.cause as RemoteError).message).toBe('string');
  });

  it('reaches a worker -> worker caller as REMOTE too', async () => {
    const outcome = await app.bus.call(w2, 'relay', {
      target: w1,
      method: 'fail',
      input: { message: 'relayed boom' },
    });
    expect(outcome).toMatchObject({ ok: false, code: 'REMOTE' });
    if (!outcome.ok) expect(outcome.message).toContain('relayed boom');
  });
});

describe("handler throws: REMOTE keeps the error's issues and data (regressions)", () => {
  const issues = [{ code: 'invalid_type', path: ['n'], message: 'expected an even number' }];

  /** Runs `body` with `primaryOnly` handled in the primary by `handler`, then unregisters it. */
  async function withPrimaryOnly<T>(handler: () => never, body: () => Promise<T>): Promise<T> {
    const off = app.bus.handle('primaryOnly', handler);
    try {
      return await body();
    } finally {
      off();
    }
  }

  /** What worker `id` sees when it calls the primary's `primaryOnly`, which throws. */
  function relayedThrow(id: number, handler: () => never) {
    return withPrimaryOnly(handler, () =>
      app.bus.call(id, 'relay', { target: 'primary', method: 'primaryOnly', input: { n: 1 } }),
    );
  }

  it("gives a worker calling the primary the BusError's code, issues and data", async () => {
    const outcome = await relayedThrow(w1, () => {
      throw new BusError('BAD_INPUT', 'n must be even', { issues, data: { field: 'n' } });
    });
    expect(outcome).toMatchObject({
      ok: false,
      code: 'REMOTE',
      message: "handler 'primaryOnly' on the primary threw BusError: n must be even",
      issues,
      cause: { name: 'BusError', code: 'BAD_INPUT', issues, data: { field: 'n' } },
    });
  });

  it("gives it an Error's own enumerable properties as data (status, details)", async () => {
    const outcome = await relayedThrow(w2, () => {
      throw Object.assign(new Error('no such user'), { status: 404, details: { id: 7 } });
    });
    expect(outcome).toMatchObject({
      ok: false,
      code: 'REMOTE',
      cause: { name: 'Error', data: { status: 404, details: { id: 7 } } },
    });
    if (!outcome.ok) expect(outcome.issues).toBeUndefined();
  });

  it('keeps the issues through a handler that rethrows the REMOTE error (two hops)', async () => {
    await withPrimaryOnly(
      () => {
        throw new BusError('BAD_INPUT', 'n must be even', { issues });
      },
      async () => {
        // The primary -> worker 1 ('askPrimary') -> the primary ('primaryOnly'), which throws.
        const error = await rejection(app.bus.call(w1, 'askPrimary', { n: 1 }));
        expect(error.code).toBe('REMOTE');
        expect(error.issues).toEqual(issues);
        expect((error.cause as RemoteError).issues).toEqual(issues);
        expect(error.message).not.toMatch(/[\r\n]/);
      },
    );
  });
});

describe('TIMEOUT and ABORTED', () => {
  it('rejects with TIMEOUT after timeoutMs when the handler hangs', async () => {
    const t0 = performance.now();
    const error = await rejection(app.bus.call(w1, 'hang', undefined, { timeoutMs: 300 }));
    const elapsed = performance.now() - t0;
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toContain('300');
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5_000);
  });

  it("aborts the remote handler's ctx.signal when the call times out", async () => {
    const before = (await app.bus.call(w1, 'abortLog')).length;
    const error = await rejection(app.bus.call(w1, 'waitAbort', undefined, { timeoutMs: 300 }));
    expect(error.code).toBe('TIMEOUT');
    expect(await newAborts(w1, before)).toEqual([expect.stringContaining('cancelled')]);
  });

  it("rejects with ABORTED when the caller's signal fires, and aborts the remote ctx.signal", async () => {
    const before = (await app.bus.call(w2, 'abortLog')).length;
    const startedBefore = await startedCount(w2, 'waitAbort');
    const controller = new AbortController();
    const call = app.bus.call(w2, 'waitAbort', undefined, {
      signal: controller.signal,
      timeoutMs: 20_000,
    });
    // Abort only once the handler is running in the worker.
    await until(
      () => startedCount(w2, 'waitAbort'),
      (n) => n > startedBefore,
      'the handler starts',
    );
    const reason = new Error('the test gave up');
    const t0 = performance.now();
    controller.abort(reason);
    const error = await rejection(call);
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(error.code).toBe('ABORTED');
    expect(error.cause).toBe(reason);
    const aborts = await newAborts(w2, before);
    expect(aborts).toEqual([expect.stringContaining('cancelled')]);
    expect(await app.bus.call(w2, 'lastAbort')).toBe(aborts[0]);
  });

  it('rejects at once with ABORTED for an already-aborted signal, without running the handler', async () => {
    const startedBefore = await startedCount(w1, 'hang');
    const error = await rejection(
      app.bus.call(w1, 'hang', undefined, { signal: AbortSignal.abort() }),
    );
    expect(error.code).toBe('ABORTED');
    // A later call on the same link has been served, so an earlier request would have been too.
    expect(await startedCount(w1, 'hang')).toBe(startedBefore);
  });

  it('times out a worker -> worker call in the caller and aborts the target handler', async () => {
    const before = (await app.bus.call(w2, 'abortLog')).length;
    const outcome = await app.bus.call(w1, 'relay', {
      target: w2,
      method: 'waitAbort',
      timeoutMs: 300,
    });
    expect(outcome).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(250);
    expect(outcome.elapsedMs).toBeLessThan(5_000);
    expect(await newAborts(w2, before)).toEqual([expect.stringContaining('cancelled')]);
  });
});

describe('misuse and unknown targets', () => {
  it('rejects with NO_TARGET for an unknown worker id', async () => {
    const error = await rejection(app.bus.call(9_999, 'add', { a: 1, b: 2 }));
    expect(error.code).toBe('NO_TARGET');
    expect(error.message).toContain('9999');
  });

  it('rejects with INVALID_ARGUMENT for a method not in the contract, never throwing', async () => {
    const unknown = 'notAMethod' as 'add'; // cast past the types
    let call: Promise<unknown> | undefined;
    expect(() => {
      call = app.bus.call(w1, unknown, { a: 1, b: 2 });
    }).not.toThrow();
    const error = await rejection(call!);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('notAMethod');
    const all = await rejection(app.bus.callAll(unknown, { a: 1, b: 2 }));
    expect(all.code).toBe('INVALID_ARGUMENT');
  });

  it.each([0, -1, 1.5, 'nobody'])('rejects target %s with INVALID_ARGUMENT', async (target) => {
    const error = await rejection(app.bus.call(target as number, 'add', { a: 1, b: 2 }));
    expect(error.code).toBe('INVALID_ARGUMENT');
  });

  it.each([0, -5, Number.NaN, 2 ** 40])('rejects timeoutMs %s with INVALID_ARGUMENT', async (t) => {
    const error = await rejection(app.bus.call(w1, 'add', { a: 1, b: 2 }, { timeoutMs: t }));
    expect(error.code).toBe('INVALID_ARGUMENT');
  });
});

describe('stacks', () => {
  it('name the line of the test that issued the call, for every kind of rejection', async () => {
    const cases: [string, () => Promise<unknown>][] = [
      ['REMOTE', () => app.bus.call(w1, 'fail', { message: 'x' })],
      ['BAD_INPUT', () => app.bus.call(w1, 'add', { a: 1 } as { a: number; b: number })],
      ['BAD_OUTPUT', () => app.bus.call(w1, 'badOutput')],
      ['TIMEOUT', () => app.bus.call(w1, 'hang', undefined, { timeoutMs: 100 })],
      ['NO_TARGET', () => app.bus.call(9_999, 'whoami')],
      ['INVALID_ARGUMENT', () => app.bus.call(w1, 'nope' as 'whoami')],
    ];
    const failures: string[] = [];
    for (const [code, issue] of cases) {
      // Each call is awaited right here: its rejection must name this file.
      let error: unknown;
      try {
        await issue();
      } catch (e) {
        error = e;
      }
      expect((error as BusError).code).toBe(code);
      const stack = (error as Error).stack ?? '';
      if (!stack.includes(FILE)) failures.push(`${code}: ${stack}`);
    }
    expect(failures).toEqual([]);
  });

  it('points a REMOTE rejection at the awaiting line', async () => {
    let error: unknown;
    const from = lineHere();
    try {
      await app.bus.call(w1, 'fail', { message: 'where' });
    } catch (e) {
      error = e;
    }
    const to = lineHere();
    expect((error as BusError).code).toBe('REMOTE');
    expectStackAt(error, FILE, from, to);
  });

  it('points a TIMEOUT rejection at the awaiting line', async () => {
    let error: unknown;
    const from = lineHere();
    try {
      await app.bus.call(w2, 'hang', undefined, { timeoutMs: 100 });
    } catch (e) {
      error = e;
    }
    const to = lineHere();
    expect((error as BusError).code).toBe('TIMEOUT');
    expectStackAt(error, FILE, from, to);
  });

  it('points a BAD_OUTPUT rejection at the awaiting line', async () => {
    let error: unknown;
    const from = lineHere();
    try {
      await app.bus.call(w2, 'badOutput');
    } catch (e) {
      error = e;
    }
    const to = lineHere();
    expect((error as BusError).code).toBe('BAD_OUTPUT');
    expectStackAt(error, FILE, from, to);
  });

  it('points a rejection at the issuing line when the caller chains .catch instead of awaiting', async () => {
    const from = lineHere();
    const error = await app.bus.call(w1, 'fail', { message: 'chained' }).catch((e: unknown) => e);
    const to = lineHere();
    expect((error as BusError).code).toBe('REMOTE');
    expectStackAt(error, FILE, from, to);
  });

  it('by default, points a rejection of a call awaited later at the line that awaits it', async () => {
    const pending = app.bus.call(w2, 'hang', undefined, { timeoutMs: 100 });
    await app.bus.call(w1, 'add', { a: 1, b: 1 });
    let error: unknown;
    const from = lineHere();
    try {
      await pending;
    } catch (e) {
      error = e;
    }
    const to = lineHere();
    expect((error as BusError).code).toBe('TIMEOUT');
    expectStackAt(error, FILE, from, to);
  });

  it('points a NO_TARGET rejection at the awaiting line', async () => {
    let error: unknown;
    const from = lineHere();
    try {
      await app.bus.call(12_345, 'whoami');
    } catch (e) {
      error = e;
    }
    const to = lineHere();
    expect((error as BusError).code).toBe('NO_TARGET');
    expectStackAt(error, FILE, from, to);
  });
});

describe('stacks with callSiteStacks: true (captured when the call is issued)', () => {
  let stacked: App | undefined;
  let target = 0;
  beforeAll(async () => {
    stacked = await start({ workers: 1, callSiteStacks: true });
    target = stacked.workers()[0]!.id;
  });
  afterAll(async () => {
    // Only this cluster: the file's main cluster is still running (its afterAll checks every pid).
    await stacked?.close();
    expect(stacked?.bus.pendingCount).toBe(0);
  });

  it('points a rejection at the issuing line when the call is awaited later', async () => {
    const from = lineHere();
    const pending = stacked!.bus.call(target, 'hang', undefined, { timeoutMs: 100 });
    const to = lineHere();
    await stacked!.bus.call(target, 'add', { a: 1, b: 1 });
    let error: unknown;
    try {
      await pending;
    } catch (e) {
      error = e;
    }
    expect((error as BusError).code).toBe('TIMEOUT');
    expectStackAt(error, FILE, from, to);
  });

  it('points a rejection at the issuing line when no async function awaits the call', async () => {
    const from = lineHere();
    const caught = new Promise<unknown>((resolve) => {
      stacked!.bus.call(target, 'hang', undefined, { timeoutMs: 100 }).catch(resolve);
    });
    const to = lineHere();
    const error = await caught;
    expect((error as BusError).code).toBe('TIMEOUT');
    expectStackAt(error, FILE, from, to);
  });
});

describe('messages on the IPC channel that are not ours', () => {
  it('leaves foreign messages from a worker alone; calls still work', async () => {
    const reported: BusError[] = [];
    const onError = (e: BusError) => reported.push(e);
    const fromApp: BusError[] = [];
    const onApp = (e: BusError) => fromApp.push(e);
    app.bus.on('error', onError);
    app.on('error', onApp);
    try {
      // A plain object, a string, then a `$cb` frame of protocol version 99.
      await app.bus.call(w1, 'sendForeign');
      expect(await app.bus.call(w1, 'add', { a: 1, b: 1 })).toBe(2);
      expect(await app.bus.call(w2, 'callPeer', { target: w1, a: 2, b: 2 })).toBe(4);
      // The plain object and the string are someone else's: not a word. The version-99 frame
      // carries our marker: reported once as PROTOCOL, never acted on (it would be a request).
      expect(reported.map((e) => [e.code, e.message])).toEqual([
        ['PROTOCOL', expect.stringMatching(new RegExp(`worker ${w1}.*version 99`))],
      ]);
      expect(fromApp).toEqual(reported);
    } finally {
      app.bus.off('error', onError);
      app.off('error', onApp);
    }
  });

  it('leaves foreign messages to a worker alone; calls still work', async () => {
    const worker = cluster.workers?.[w2];
    if (worker === undefined) throw new Error('worker not found');
    const before = (await app.bus.call(w2, 'errors')).length;
    worker.send({ cmd: 'someone-else', payload: 1 });
    worker.send('a plain string');
    worker.send({ $cb: 99, k: 'req', i: 1, m: 'add' });
    expect(await app.bus.call(w2, 'add', { a: 3, b: 4 })).toBe(7);
    // Same order on the link: the foreign messages were handled before this call.
    const errors = (await app.bus.call(w2, 'errors')).slice(before);
    expect(errors).toEqual([expect.stringMatching(/^PROTOCOL: .*version 99/)]);
  });

  it("reports a malformed frame with our marker as PROTOCOL on the app's and the bus's error events", async () => {
    const fromApp: BusError[] = [];
    const fromBus: BusError[] = [];
    const onApp = (e: BusError) => fromApp.push(e);
    const onBus = (e: BusError) => fromBus.push(e);
    app.on('error', onApp);
    app.bus.on('error', onBus);
    try {
      await app.bus.call(w2, 'sendMalformed');
      const matches = (e: BusError) =>
        e.code === 'PROTOCOL' &&
        e.message.includes(`worker ${w2}`) &&
        e.message.includes('nonsense');
      await until(
        () => fromBus,
        (es) => es.some(matches),
        "the bus's error event",
      );
      await until(
        () => fromApp,
        (es) => es.some(matches),
        "the app's error event",
      );
      expect(fromBus.filter((e) => !matches(e))).toEqual([]);
      expect(await app.bus.call(w2, 'add', { a: 5, b: 5 })).toBe(10);
      expect(await app.bus.call(w1, 'callPeer', { target: w2, a: 1, b: 1 })).toBe(2);
    } finally {
      app.off('error', onApp);
      app.bus.off('error', onBus);
    }
  });

  it("reports a malformed frame from the primary on the worker's error event", async () => {
    const worker = cluster.workers?.[w1];
    if (worker === undefined) throw new Error('worker not found');
    const before = (await app.bus.call(w1, 'errors')).length;
    worker.send({ $cb: 1, k: 'nonsense' });
    worker.send({ $cb: 1, k: 'req', i: -1, m: 'add' });
    expect(await app.bus.call(w1, 'add', { a: 1, b: 2 })).toBe(3);
    const errors = (await app.bus.call(w1, 'errors')).slice(before);
    expect(errors).toEqual([
      expect.stringMatching(/^PROTOCOL: .*nonsense/),
      expect.stringMatching(/^PROTOCOL: .*id/),
    ]);
  });
});

describe('reporting without a caller', () => {
  /** Runs `body` while recording the process's BusWarnings. */
  async function withWarnings(body: (warnings: Error[]) => Promise<void>): Promise<void> {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => {
      if (w.name === 'BusWarning') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      await body(warnings);
    } finally {
      process.off('warning', onWarning);
    }
  }

  it('prints a BusWarning when nobody listens for errors, so nothing is dropped silently', async () => {
    await withWarnings(async (warnings) => {
      await app.bus.call(w1, 'sendMalformed');
      await until(
        () => warnings,
        (ws) => ws.some((w) => w.message.includes('nonsense')),
        'a BusWarning for the malformed frame',
      );
    });
  });

  it('prints no BusWarning for an error that a listener on app.bus handled', async () => {
    await withWarnings(async (warnings) => {
      const handled: BusError[] = [];
      const onBus = (e: BusError) => handled.push(e);
      app.bus.on('error', onBus);
      try {
        await app.bus.call(w1, 'sendMalformed');
        await until(
          () => handled,
          (es) => es.length > 0,
          "the bus's error event",
        );
        // process.emitWarning emits on the next tick; let that tick pass.
        await new Promise((resolve) => setImmediate(resolve));
        expect(handled.map((e) => e.code)).toEqual(['PROTOCOL']);
        expect(warnings.map((w) => w.message)).toEqual([]);
      } finally {
        app.bus.off('error', onBus);
      }
    });
  });
});
