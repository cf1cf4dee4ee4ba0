import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineContract } from '../../src/contract.js';
import {
  BusError,
  isBusErrorJSON,
  RemoteError,
  summarizeIssues,
  toRemoteError,
} from '../../src/errors.js';
import { StoreHost } from '../../src/state/host.js';
import { harnessPerTest, rejection } from './helpers.js';

describe('BusError wire form', () => {
  it('round-trips code, message, issues and the remote cause', () => {
    const remote = toRemoteError(
      Object.assign(new TypeError('boom'), { code: 'E_BOOM' }),
      'handler x',
    );
    const back = BusError.fromJSON(JSON.parse(JSON.stringify(remote)));
    expect(back).toBeInstanceOf(BusError);
    expect(back.code).toBe('REMOTE');
    expect(back.message).toBe(remote.message);
    expect(back.cause).toBeInstanceOf(RemoteError);
    const cause = back.cause as RemoteError;
    expect(cause.name).toBe('TypeError');
    expect(cause.message).toBe('boom');
    expect(cause.code).toBe('E_BOOM');
    expect(cause.stack).toContain('errors.test.ts');

    const invalid = new BusError('BAD_INPUT', 'bad', {
      issues: [{ code: 'invalid_type', path: ['a', 0], message: 'm' }],
    });
    expect(BusError.fromJSON(invalid.toJSON()).issues).toEqual(invalid.issues);
  });

  it.each([
    null,
    'x',
    [],
    { code: 'NOT_A_CODE', message: 'x' },
    { code: 'TIMEOUT' },
    { code: 'TIMEOUT', message: 1 },
    { code: 'BAD_INPUT', message: 'x', issues: [{ code: 1 }] },
    { code: 'REMOTE', message: 'x', remote: { name: 'E' } },
    { code: 'REMOTE', message: 'x', remote: { name: 'E', message: 'm', issues: [{ code: 1 }] } },
    { code: 'REMOTE', message: 'x', remote: { name: 'E', message: 'm', issues: {} } },
    { code: 'REMOTE', message: 'x', remote: { name: 'E', message: 'm', data: [1] } },
    { code: 'REMOTE', message: 'x', remote: { name: 'E', message: 'm', data: 'x' } },
  ])('turns a malformed wire error %j into PROTOCOL, never a throw', (value) => {
    expect(isBusErrorJSON(value)).toBe(false);
    expect(BusError.fromJSON(value).code).toBe('PROTOCOL');
  });

  it('describes non-Error throws readably', () => {
    expect(toRemoteError('plain', 'h').message).toContain('plain');
    expect(toRemoteError(undefined, 'h').message).toContain('undefined');
    const hostile = Object.defineProperty({}, 'toJSON', {
      get() {
        throw new Error('getter throws');
      },
    });
    expect(toRemoteError(hostile, 'h').code).toBe('REMOTE');
    const badError = new Error('x');
    Object.defineProperty(badError, 'message', {
      get() {
        throw new Error('nope');
      },
    });
    expect(toRemoteError(badError, 'h').message).toContain('could not be described');
  });
});

const contract = defineContract({
  methods: {
    add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
    bad: { output: z.object({ total: z.number() }) },
    lookup: { input: z.object({ id: z.number() }), output: z.string() },
  },
  events: { tick: z.object({ n: z.number(), at: z.string() }) },
  stores: { users: z.object({ name: z.string() }) },
});

const start = harnessPerTest(contract);

/** How many times `needle` occurs in `text`. */
function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

describe('one-line messages (regressions)', () => {
  it('summarizes a BAD_INPUT on one line, and util.inspect shows the issues list once', async () => {
    const h = await start(1);
    h.workers[0]!.handle('add', ({ a, b }) => a + b);
    const error = await rejection(
      h.primary.call(1, 'add', { a: 'x' } as unknown as { a: number; b: number }),
    );
    expect(error.code).toBe('BAD_INPUT');
    expect(error.message).not.toMatch(/[\r\n]/);
    expect(error.message).toBe(
      "handler 'add' on worker 1: the input fails the input schema: input.a: expected number, received string; input.b: expected number, received undefined",
    );
    expect(error.issues).toHaveLength(2);
    const printed = inspect(error, { depth: 5 });
    // Each issue's code is printed once: in the issues list, not again in the message.
    expect(count(printed, 'invalid_type')).toBe(2);
    expect(count(printed, 'issues:')).toBe(1);
  });

  it.each([
    ['BAD_OUTPUT', 'output.total: expected number, received string'],
    ['BAD_PAYLOAD', 'payload.n: expected number, received string; payload.at:'],
    [
      'BAD_INPUT (store)',
      "store 'users' key 'u1': the value fails the store's schema: value.name:",
    ],
  ] as const)('summarizes a %s on one line, naming the path from its root', async (kind, text) => {
    const h = await start(1);
    const { primary, workers } = h;
    workers[0]!.handle('bad', () => ({ total: 'many' }) as unknown as { total: number });
    let error: BusError;
    if (kind === 'BAD_OUTPUT') error = await rejection(primary.call(1, 'bad'));
    else if (kind === 'BAD_PAYLOAD') {
      error = catching(() =>
        workers[0]!.publish('tick', { n: 'x' } as unknown as { n: number; at: string }),
      );
    } else {
      const host = await StoreHost.open(primary);
      try {
        error = await rejection(
          workers[0]!.store('users').set('u1', { name: 1 } as unknown as { name: string }),
        );
      } finally {
        await host.close();
      }
    }
    expect(error.message).toContain(text);
    expect(error.message).not.toMatch(/[\r\n]/);
    expect(error.issues?.length).toBeGreaterThan(0);
  });

  it('names at most 3 issues, then (+N more); the full list stays in issues', () => {
    const parsed = z.array(z.number()).safeParse(['a', 'b', 'c', 'd', 'e']);
    expect(parsed.success).toBe(false);
    if (parsed.success) return;
    expect(summarizeIssues(parsed.error.issues, 'input')).toBe(
      'input[0]: expected number, received string; input[1]: expected number, received string; input[2]: expected number, received string (+2 more)',
    );
    expect(
      summarizeIssues(
        [
          { path: ['a b', 0, 'c'], message: 'line one\nline two' },
          { path: [], message: 'at the root' },
        ],
        'value',
      ),
    ).toBe('value["a b"][0].c: line one line two; value: at the root');
    expect(summarizeIssues([{ path: ['x'], message: 'm' }])).toBe('x: m');
  });

  it("builds no message from a ZodError's message (pretty-printed JSON): src uses summarizeIssues", async () => {
    const offenders: string[] = [];
    const src = fileURLToPath(new URL('../../src/', import.meta.url));
    for (const file of await readdir(src, { recursive: true })) {
      if (!file.endsWith('.ts')) continue;
      const text = await readFile(path.join(src, file), 'utf8');
      text.split('\n').forEach((line, i) => {
        if (/\.error\.message\b|\bprettifyError\b/.test(line))
          offenders.push(`src/${file}:${i + 1}`);
      });
    }
    expect(offenders).toEqual([]);
  });

  it('folds line breaks of any message into one line, also one received from the wire', () => {
    expect(new BusError('PROTOCOL', 'first\n  second\r\nthird').message).toBe('first second third');
    expect(BusError.fromJSON({ code: 'REMOTE', message: 'forged\nline' }).message).toBe(
      'forged line',
    );
    // A handler's ZodError message is pretty-printed JSON: the REMOTE message names the issues.
    const zodError = z.object({ a: z.number() }).safeParse({}).error;
    const remote = toRemoteError(zodError, "handler 'x' on worker 1");
    expect(remote.message).toBe(
      "handler 'x' on worker 1 threw ZodError: a: expected number, received undefined",
    );
  });
});

/** How many levels of objects `value` nests. */
function depthOf(value: unknown): number {
  let depth = 0;
  for (let v = value; typeof v === 'object' && v !== null; v = (v as { deep?: unknown }).deep) {
    depth++;
  }
  return depth;
}

/** The BusError `fn` throws synchronously. */
function catching(fn: () => unknown): BusError {
  try {
    fn();
  } catch (error) {
    if (error instanceof BusError) return error;
    throw error;
  }
  throw new Error('expected a throw');
}

describe("REMOTE keeps the handler's issues and data (regressions)", () => {
  const issues = [{ code: 'invalid_type', path: ['id'], message: 'expected number' }];

  it("carries a thrown BusError's code, issues and data: err.issues and err.cause.issues", async () => {
    const h = await start(2);
    h.workers[0]!.handle('lookup', () => {
      throw new BusError('BAD_INPUT', 'lookup: id is not a user id', {
        issues,
        data: { field: 'id' },
      });
    });
    // From the primary, and from another worker (routed through the primary).
    for (const caller of [h.primary, h.workers[1]!]) {
      const error = await rejection(caller.call(1, 'lookup', { id: 1 }));
      expect(error.code).toBe('REMOTE');
      expect(error.issues).toEqual(issues);
      expect(error.cause).toBeInstanceOf(RemoteError);
      const cause = error.cause as RemoteError;
      expect(cause.code).toBe('BAD_INPUT');
      expect(cause.issues).toEqual(issues);
      expect(cause.data).toEqual({ field: 'id' });
      expect(error.message).toBe(
        "handler 'lookup' on worker 1 threw BusError: lookup: id is not a user id",
      );
      // Printed once (in the cause), sent once (in remote.issues).
      expect(count(inspect(error, { depth: 6 }), 'invalid_type')).toBe(1);
      expect(count(JSON.stringify(error.toJSON()), 'invalid_type')).toBe(1);
    }
  });

  it("carries a ZodError's issues (a handler's own schema.parse), on a one-line message", async () => {
    const h = await start(1);
    h.workers[0]!.handle('lookup', ({ id }) => z.string().min(3).parse(String(id)));
    const error = await rejection(h.primary.call(1, 'lookup', { id: 7 }));
    expect(error.code).toBe('REMOTE');
    expect(error.message).toBe(
      "handler 'lookup' on worker 1 threw ZodError: Too small: expected string to have >=3 characters",
    );
    expect(error.issues).toEqual([
      expect.objectContaining({ code: 'too_small', path: [], message: expect.any(String) }),
    ]);
    expect((error.cause as RemoteError).name).toBe('ZodError');
  });

  it("carries an Error's own enumerable data as JSON, dropping what JSON cannot carry", async () => {
    const h = await start(1);
    h.workers[0]!.handle('lookup', ({ id }) => {
      throw Object.assign(new Error(`no user ${id}`), {
        code: 'E_NOT_FOUND',
        status: 404,
        details: { id, tried: ['cache', 'db'], at: new Date(0), nan: Number.NaN },
        callback: () => 1,
        big: 10n,
        nothing: undefined,
      });
    });
    const error = await rejection(h.primary.call(1, 'lookup', { id: 7 }));
    const cause = error.cause as RemoteError;
    expect(cause.code).toBe('E_NOT_FOUND');
    expect(cause.data).toEqual({
      status: 404,
      details: { id: 7, tried: ['cache', 'db'], at: '1970-01-01T00:00:00.000Z', nan: null },
    });
    expect(error.issues).toBeUndefined();
  });

  it('never throws, and never pollutes a prototype, for hostile error properties', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    let deep: unknown = 'bottom';
    for (let i = 0; i < 10_000; i++) deep = { deep };
    const thrown = Object.assign(new Error('hostile'), {
      cyclic,
      deep,
      huge: 'x'.repeat(1_000_000),
      small: 'kept',
      proxy: new Proxy(
        {},
        {
          ownKeys() {
            throw new Error('ownKeys trap');
          },
        },
      ),
      badToJSON: {
        toJSON() {
          throw new Error('toJSON throws');
        },
      },
      polluter: JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as unknown,
      issues: [{ code: 'custom', path: ['a', Symbol('s')], message: 'm' }, 'not an issue', null],
    });
    Object.defineProperty(thrown, 'getter', {
      enumerable: true,
      get() {
        throw new Error('getter throws');
      },
    });
    const error = toRemoteError(thrown, 'h');
    const wire = JSON.parse(JSON.stringify(error.toJSON())) as unknown;
    const back = BusError.fromJSON(wire);
    const cause = back.cause as RemoteError;
    const { deep: kept, ...rest } = cause.data ?? {};
    expect(rest).toEqual({ cyclic: { name: 'loop' }, small: 'kept', polluter: { ok: 1 } });
    expect(depthOf(kept)).toBe(16); // deeper branches are left out
    expect(JSON.stringify(cause.data).length).toBeLessThanOrEqual(16 * 1024);
    expect(back.issues).toEqual([{ code: 'custom', path: ['a', 'Symbol(s)'], message: 'm' }]);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(cause.data?.polluter)).toBe(Object.prototype);
  });

  it('leaves the data that fits when one property is too large for the 16 KiB bound', () => {
    const thrown = Object.assign(new Error('big'), {
      first: 'a'.repeat(10_000),
      second: 'b'.repeat(10_000),
      third: 3,
    });
    const cause = toRemoteError(thrown, 'h').cause as RemoteError;
    expect(Object.keys(cause.data ?? {})).toEqual(['first', 'third']);
  });
});
