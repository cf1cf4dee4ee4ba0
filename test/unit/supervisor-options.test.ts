/**
 * The supervisor's option checks and what a worker reads from its environment: messages that
 * name the refused value with its type, the signal map, PM2 cluster-mode detection, and the
 * signals a worker leaves to its primary.
 */
import { describe, expect, it } from 'vitest';
import { type Contract, defineContract } from '../../src/index.js';
import {
  forkedByClusterbus,
  PRIMARY_ENV,
  pm2ClusterMode,
  primarySignals,
  SIGNALS_ENV,
  workerEnv,
} from '../../src/supervisor/env.js';
import { resolveOptions, type StartClusterOptions } from '../../src/supervisor/options.js';
import {
  deferSignalsToPrimary,
  handledSignals,
  resolveSignals,
} from '../../src/supervisor/signals.js';
import { describeValue } from '../../src/util/describe.js';

const contract = defineContract({});

/** The BusError `resolveOptions` throws for `options` (on top of the contract). */
function refusal(options: Record<string, unknown>): { code: string; message: string } {
  try {
    resolveOptions({ contract, ...options } as unknown as StartClusterOptions<Contract>);
  } catch (error) {
    const e = error as { code: string; message: string };
    return { code: e.code, message: e.message };
  }
  throw new Error(`expected ${JSON.stringify(options)} to be refused`);
}

describe('describeValue', () => {
  it('names the type of what it describes', () => {
    expect(describeValue('2')).toBe('the string "2"');
    expect(describeValue(2)).toBe('2');
    expect(describeValue(Number.NaN)).toBe('NaN');
    expect(describeValue(-0)).toBe('-0');
    expect(describeValue(2n)).toBe('the bigint 2n');
    expect(describeValue(true)).toBe('true');
    expect(describeValue(null)).toBe('null');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(() => {})).toBe('a function');
    expect(describeValue(Symbol('s'))).toBe('a symbol');
    expect(describeValue([1])).toBe('an array');
    expect(describeValue({ a: 1 })).toBe('an object');
    expect(describeValue(Object.create(null))).toBe('an object');
    expect(describeValue(new Map())).toBe('a Map');
    expect(describeValue(new Error('x'))).toBe('an Error');
    expect(describeValue('x'.repeat(100))).toBe(`the string "${'x'.repeat(40)}…"`);
  });

  it('runs nothing of a hostile value: no toString, no getter, no Proxy trap escapes', () => {
    const hostile = {
      toString() {
        throw new Error('toString ran');
      },
      get constructor() {
        throw new Error('getter ran');
      },
    };
    expect(describeValue(hostile)).toBe('an object');
    const proxy = new Proxy(
      {},
      {
        getPrototypeOf() {
          throw new Error('trap ran');
        },
      },
    );
    expect(describeValue(proxy)).toBe('an object');
  });
});

describe('startCluster option messages', () => {
  it("names the refused value's type: workers '2' is the string \"2\"", () => {
    expect(refusal({ workers: '2' })).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'startCluster: workers must be an integer >= 1, got the string "2"',
    });
    expect(refusal({ workers: 0 }).message).toBe(
      'startCluster: workers must be an integer >= 1, got 0',
    );
    expect(refusal({ maxRestarts: 1.5 }).message).toBe(
      'startCluster: maxRestarts must be an integer >= 0, got 1.5',
    );
    expect(refusal({ readyTimeoutMs: '100' }).message).toContain('got the string "100"');
    expect(refusal({ health: { intervalMs: '5' } }).message).toContain('got the string "5"');
    expect(refusal({ configFile: 42 }).message).toBe(
      'startCluster: configFile must be a path (a string), got 42',
    );
  });
});

describe('the signals option', () => {
  it('defaults to shutdown on SIGTERM and SIGINT, restart on SIGUSR2, reload on SIGHUP (with a config file)', () => {
    const withFile = { shutdown: ['SIGTERM', 'SIGINT'], restart: 'SIGUSR2', reload: 'SIGHUP' };
    expect(resolveSignals(undefined, true)).toEqual(withFile);
    expect(resolveSignals(true, true)).toEqual(withFile);
    expect(resolveSignals(undefined, false)).toEqual({ ...withFile, reload: undefined });
    expect(resolveSignals(false, true)).toBeUndefined();
    expect(handledSignals(resolveSignals(undefined, false))).toEqual([
      'SIGTERM',
      'SIGINT',
      'SIGUSR2',
    ]);
    expect(handledSignals(undefined)).toEqual([]);
  });

  it('takes a map: a field left out keeps its default, false turns an action off', () => {
    expect(resolveSignals({ restart: 'SIGWINCH', reload: false }, true)).toEqual({
      shutdown: ['SIGTERM', 'SIGINT'],
      restart: 'SIGWINCH',
      reload: undefined,
    });
    expect(resolveSignals({ shutdown: 'SIGQUIT', restart: false }, false)).toEqual({
      shutdown: ['SIGQUIT'],
      restart: undefined,
      reload: undefined,
    });
    expect(resolveSignals({ shutdown: false }, false)?.shutdown).toEqual([]);
  });

  it('refuses unknown keys, uncatchable or unknown signals, and one signal for two actions', () => {
    for (const [signals, says] of [
      [{ restrat: 'SIGUSR2' }, 'unknown key "restrat"'],
      [{ toString: 'SIGUSR2' }, 'unknown key "toString"'],
      [
        { restart: 'SIGKILL' },
        'signals.restart must be a signal name this process can catch (e.g. \'SIGUSR2\') or false, got the string "SIGKILL"',
      ],
      [{ restart: 'SIGFOO' }, 'got the string "SIGFOO"'],
      [{ reload: 1 }, 'signals.reload must be'],
      [{ shutdown: ['SIGTERM', 'SIGSTOP'] }, 'signals.shutdown must be'],
      [{ restart: 'SIGTERM' }, 'SIGTERM is given to two actions'],
      ['yes', 'signals must be true, false or { shutdown, restart, reload }, got the string "yes"'],
    ] as const) {
      const error = refusal({ signals });
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(says);
    }
    // A reload signal is checked even without a config file: the option is wrong either way.
    expect(refusal({ signals: { reload: 'SIGUSR2' } }).message).toContain('two actions');
  });
});

describe("a worker's environment", () => {
  const mine = workerEnv(['SIGTERM', 'SIGUSR2']);

  it('names the clusterbus primary exactly: its pid must be the parent', () => {
    expect(mine).toEqual({ [PRIMARY_ENV]: String(process.pid), [SIGNALS_ENV]: 'SIGTERM,SIGUSR2' });
    expect(forkedByClusterbus(mine, process.pid)).toBe(true);
    // Inherited by a grandchild, or set by hand: another parent, so not ours.
    expect(forkedByClusterbus(mine, process.pid + 1)).toBe(false);
    expect(forkedByClusterbus({}, process.pid)).toBe(false);
  });

  it("reads the primary's signals only when the primary is its parent", () => {
    const asChild = { [PRIMARY_ENV]: String(process.ppid), [SIGNALS_ENV]: 'SIGTERM,SIGUSR2' };
    expect(primarySignals(asChild)).toEqual(['SIGTERM', 'SIGUSR2']);
    expect(primarySignals({ ...asChild, [SIGNALS_ENV]: '' })).toEqual([]);
    expect(primarySignals({ ...asChild, [PRIMARY_ENV]: '1' })).toEqual([]);
  });

  it("detects PM2's cluster mode from PM2's variables, not its fork mode", () => {
    expect(pm2ClusterMode({ exec_mode: 'cluster_mode', pm_id: '0' })).toBe(true);
    expect(pm2ClusterMode({ NODE_APP_INSTANCE: '1' })).toBe(true);
    expect(pm2ClusterMode({ pm_id: '2' })).toBe(true);
    expect(pm2ClusterMode({ exec_mode: 'fork_mode', pm_id: '0', NODE_APP_INSTANCE: '0' })).toBe(
      false,
    );
    expect(pm2ClusterMode({})).toBe(false);
  });
});

describe('deferSignalsToPrimary', () => {
  it("ignores SIGINT, SIGTERM and the primary's signals while installed, and removes exactly its listeners", () => {
    const signals = ['SIGINT', 'SIGTERM', 'SIGUSR2', 'SIGHUP'] as const;
    const before = signals.map((s) => process.listenerCount(s));
    const remove = deferSignalsToPrimary(['SIGUSR2', 'SIGHUP', 'SIGTERM']);
    expect(signals.map((s) => process.listenerCount(s))).toEqual(before.map((n) => n + 1));
    remove();
    expect(signals.map((s) => process.listenerCount(s))).toEqual(before);
    const plain = deferSignalsToPrimary();
    expect(process.listenerCount('SIGUSR2')).toBe(before[2]);
    expect(process.listenerCount('SIGINT')).toBe(before[0]! + 1);
    plain();
  });
});
