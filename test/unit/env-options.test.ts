/**
 * Options from outside the code, resolved without a process: `--workers` and the environment
 * variables, their precedence (code, then flag, then environment, then default), each variable's
 * option and unit, the refusals that name the variable and the value, the values ignored because
 * the code sets them (or they do not apply), `readEnv: false`, and the worker bounds.
 */
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { type Contract, defineContract } from '../../src/index.js';
import {
  ENVIRONMENT_VARIABLES,
  withEnvironment,
  workersFlag,
} from '../../src/supervisor/env-options.js';
import { isLoopback } from '../../src/supervisor/ops-options.js';
import {
  type ResolvedOptions,
  resolveOptions,
  type StartClusterOptions,
} from '../../src/supervisor/options.js';

const contract = defineContract({});
type Options = Partial<StartClusterOptions<Contract>>;

/** What `startCluster` would resolve from `options`, `env` and `argv`. */
function resolve(
  options: Options = {},
  env: Record<string, string> = {},
  argv: string[] = [],
): ResolvedOptions {
  return resolveOptions(withEnvironment({ contract, ...options }, { env, argv }));
}

/** The BusError (code, message, data) that resolving throws. */
function refusal(
  options: Options = {},
  env: Record<string, string> = {},
  argv: string[] = [],
): { code: string; message: string; data: unknown } {
  try {
    resolve(options, env, argv);
  } catch (error) {
    const e = error as { code: string; message: string; data: unknown };
    return { code: e.code, message: e.message, data: e.data };
  }
  throw new Error('expected a refusal');
}

describe('precedence: code, then flag, then environment, then default', () => {
  it('takes workers from the code over --workers over CLUSTER_WORKERS over the default', () => {
    const env = { CLUSTER_WORKERS: '3' };
    expect(resolve({ workers: 2 }, env, ['--workers', '5']).workers).toBe(2);
    expect(resolve({}, env, ['--workers', '5']).workers).toBe(5);
    expect(resolve({}, env, ['--workers=6']).workers).toBe(6);
    expect(resolve({}, env).workers).toBe(3);
    expect(resolve({}).workers).toBe(os.availableParallelism());
  });

  it('reads --workers among other arguments, the last one winning', () => {
    expect(workersFlag(['serve', '--port', '80', '--workers', '4', 'x'])).toBe('4');
    expect(workersFlag(['--workers=1', '--workers', '7'])).toBe('7');
    expect(workersFlag(['--verbose'])).toBeUndefined();
    expect(workersFlag(['--workers'])).toBe(true);
  });

  it('with readEnv: false reads neither the flag nor any variable', () => {
    const env = {
      CLUSTER_WORKERS: '3',
      GRACEFUL_SHUTDOWN_TIMEOUT: 'not a number',
      CLUSTER_API_PORT: '9000',
    };
    const resolved = resolve({ readEnv: false }, env, ['--workers', '9']);
    expect(resolved.workers).toBe(os.availableParallelism());
    expect(resolved.drainTimeoutMs).toBe(10_000);
    expect(resolved.management).toBeUndefined();
  });

  it('refuses a readEnv that is not a boolean', () => {
    expect(refusal({ readEnv: 'no' as never }).message).toBe(
      'startCluster: readEnv must be true or false, got the string "no"',
    );
    expect(resolve({ readEnv: true }, { CLUSTER_WORKERS: '2' }).workers).toBe(2);
  });

  it('leaves a health or management option of the wrong type for the checks to refuse', () => {
    const env = { HEALTH_CHECK_INTERVAL: '100', CLUSTER_API_PORT: '9000' };
    expect(withEnvironment({ contract, health: 'on' as never }, { env, argv: [] }).health).toBe(
      'on',
    );
    expect(refusal({ management: 'on' as never }, env).message).toContain('management must be');
  });

  it('never mutates the options it is given', () => {
    const health = Object.freeze({ misses: 5 });
    const options = Object.freeze({ contract, health });
    const merged = withEnvironment(options, { env: { HEALTH_CHECK_INTERVAL: '250' }, argv: [] });
    expect(merged.health).toEqual({ misses: 5, intervalMs: 250 });
    expect(options.health).toEqual({ misses: 5 });
  });
});

describe('each variable sets its option, in its unit', () => {
  it('maps every variable', () => {
    const resolved = resolve(
      {},
      {
        CLUSTER_WORKERS: '4',
        CLUSTER_MIN_WORKERS: '2',
        CLUSTER_MAX_WORKERS: '8',
        HEALTH_CHECK_INTERVAL: '1500',
        WORKER_RESTART_DELAY: '250',
        GRACEFUL_SHUTDOWN_TIMEOUT: '20000',
        WORKER_MEMORY_LIMIT: '536870912',
        CLUSTER_API_PORT: '9000',
        CLUSTER_API_HOST: '0.0.0.0',
        CLUSTER_API_TOKEN: 's3cret',
        LOG_CLUSTER_STATS: 'true',
      },
    );
    expect(resolved).toMatchObject({
      workers: 4,
      minWorkers: 2,
      maxWorkers: 8,
      restartBackoffMs: 250,
      drainTimeoutMs: 20_000,
      management: { port: 9000, host: '0.0.0.0', token: 's3cret' },
      logClusterStatsMs: 30_000,
    });
    expect(resolved.health).toMatchObject({ intervalMs: 1_500, maxMemoryBytes: 536_870_912 });
    expect(Object.keys(ENVIRONMENT_VARIABLES)).toHaveLength(11);
  });

  it('coerces numbers as zod does: 1e3 and 0x10 are numbers, spaces around them are trimmed', () => {
    expect(resolve({}, { GRACEFUL_SHUTDOWN_TIMEOUT: '1e3' }).drainTimeoutMs).toBe(1_000);
    expect(resolve({}, { CLUSTER_WORKERS: '0x10' }).workers).toBe(16);
    expect(resolve({}, { CLUSTER_WORKERS: ' 3 ' }).workers).toBe(3);
  });

  it('takes LOG_CLUSTER_STATS as true, false or an interval in ms', () => {
    expect(resolve({}, { LOG_CLUSTER_STATS: 'true' }).logClusterStatsMs).toBe(30_000);
    expect(resolve({}, { LOG_CLUSTER_STATS: '5000' }).logClusterStatsMs).toBe(5_000);
    expect(resolve({}, { LOG_CLUSTER_STATS: 'false' }).logClusterStatsMs).toBeUndefined();
    expect(resolve({}).logClusterStatsMs).toBeUndefined();
  });

  it('makes WORKER_RESTART_DELAY the first backoff step: the delay of the second restart', () => {
    // backoff.ts: the first restart is at once, the second waits restartBackoffMs, then doubles.
    expect(resolve({}, { WORKER_RESTART_DELAY: '700' }).restartBackoffMs).toBe(700);
  });

  it('fills the health fields the code left unset, keeping the ones it set', () => {
    const env = { HEALTH_CHECK_INTERVAL: '2000', WORKER_MEMORY_LIMIT: '1000000' };
    const health = resolve({ health: { intervalMs: 900, misses: 7 } }, env).health;
    expect(health).toMatchObject({ intervalMs: 900, misses: 7, maxMemoryBytes: 1_000_000 });
  });

  it('fills the management fields the code left unset; the host defaults to 127.0.0.1', () => {
    expect(
      resolve({ management: { port: 7000 } }, { CLUSTER_API_TOKEN: 't' }).management,
    ).toMatchObject({
      port: 7000,
      host: '127.0.0.1',
      token: 't',
    });
    expect(resolve({}, { CLUSTER_API_PORT: '0' }).management).toMatchObject({
      port: 0,
      host: '127.0.0.1',
      token: undefined,
    });
    expect(resolve({}).management).toBeUndefined();
  });
});

describe('a bad value fails with INVALID_ARGUMENT naming the variable and what it got', () => {
  const cases: Array<[string, string, string]> = [
    ['CLUSTER_WORKERS', 'four', 'the string "four"'],
    ['CLUSTER_WORKERS', '0', 'the string "0"'],
    ['CLUSTER_WORKERS', '2.5', 'the string "2.5"'],
    ['CLUSTER_WORKERS', '', 'the string ""'],
    ['CLUSTER_MIN_WORKERS', '-1', 'the string "-1"'],
    ['CLUSTER_MAX_WORKERS', '1x', 'the string "1x"'],
    ['HEALTH_CHECK_INTERVAL', '5s', 'the string "5s"'],
    ['HEALTH_CHECK_INTERVAL', '99999999999', 'the string "99999999999"'],
    ['WORKER_RESTART_DELAY', '0', 'the string "0"'],
    ['GRACEFUL_SHUTDOWN_TIMEOUT', 'soon', 'the string "soon"'],
    ['WORKER_MEMORY_LIMIT', '512M', 'the string "512M"'],
    ['CLUSTER_API_PORT', '70000', 'the string "70000"'],
    ['CLUSTER_API_PORT', 'http', 'the string "http"'],
    ['LOG_CLUSTER_STATS', 'yes', 'the string "yes"'],
  ];
  for (const [variable, value, got] of cases) {
    it(`${variable}=${JSON.stringify(value)}`, () => {
      const e = refusal({}, { [variable]: value });
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.message).toContain(variable);
      expect(e.message).toContain(`got ${got}`);
      expect(e.data).toEqual({ variable, value });
    });
  }

  it('names the host and the token only when the management API is on', () => {
    const port = { CLUSTER_API_PORT: '9000' };
    expect(refusal({}, { ...port, CLUSTER_API_HOST: '  ' }).message).toContain(
      'CLUSTER_API_HOST must be a host name or address, got the string "  "',
    );
    expect(refusal({}, { ...port, CLUSTER_API_TOKEN: '' }).message).toContain('CLUSTER_API_TOKEN');
  });

  it('--workers: a bad value, or none', () => {
    expect(refusal({}, {}, ['--workers', 'many']).message).toBe(
      'startCluster: --workers must be an integer >= 1, got the string "many"',
    );
    expect(refusal({}, {}, ['--workers']).message).toBe(
      'startCluster: --workers must be an integer >= 1, got no value',
    );
  });
});

describe('only values that apply are validated', () => {
  it('ignores a malformed variable whose option the code sets', () => {
    const env = {
      CLUSTER_WORKERS: 'x',
      CLUSTER_MIN_WORKERS: 'x',
      CLUSTER_MAX_WORKERS: 'x',
      HEALTH_CHECK_INTERVAL: 'x',
      WORKER_RESTART_DELAY: 'x',
      GRACEFUL_SHUTDOWN_TIMEOUT: 'x',
      WORKER_MEMORY_LIMIT: 'x',
      CLUSTER_API_PORT: 'x',
      CLUSTER_API_HOST: '',
      CLUSTER_API_TOKEN: '',
      LOG_CLUSTER_STATS: 'x',
    };
    const resolved = resolve(
      {
        workers: 2,
        minWorkers: 1,
        maxWorkers: 3,
        health: { intervalMs: 100, maxMemoryBytes: 10 ** 9 },
        restartBackoffMs: 10,
        drainTimeoutMs: 20,
        management: { port: 1, host: 'localhost', token: 'k' },
        logClusterStats: false,
      },
      env,
    );
    expect(resolved).toMatchObject({ workers: 2, restartBackoffMs: 10, drainTimeoutMs: 20 });
    expect(resolved.management).toMatchObject({ port: 1, host: 'localhost', token: 'k' });
  });

  it('ignores a malformed --workers and CLUSTER_WORKERS when the code sets workers', () => {
    expect(resolve({ workers: 1 }, { CLUSTER_WORKERS: 'x' }, ['--workers', 'y']).workers).toBe(1);
  });

  it('ignores a malformed CLUSTER_WORKERS when --workers is given', () => {
    expect(resolve({}, { CLUSTER_WORKERS: 'x' }, ['--workers', '2']).workers).toBe(2);
  });

  it('ignores the health variables with health: false', () => {
    const env = { HEALTH_CHECK_INTERVAL: 'x', WORKER_MEMORY_LIMIT: 'x' };
    expect(resolve({ health: false }, env).health).toBeUndefined();
  });

  it('ignores the host and the token while no port is given, and all three with management: false', () => {
    expect(resolve({}, { CLUSTER_API_HOST: '', CLUSTER_API_TOKEN: '' }).management).toBeUndefined();
    const env = { CLUSTER_API_PORT: 'x', CLUSTER_API_HOST: '0.0.0.0' };
    expect(resolve({ management: false }, env).management).toBeUndefined();
  });
});

describe('the management address', () => {
  it('refuses a host that is not loopback without a token', () => {
    const e = refusal({}, { CLUSTER_API_PORT: '9000', CLUSTER_API_HOST: '0.0.0.0' });
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toContain('0.0.0.0, which is not loopback, without a token');
    expect(refusal({ management: { port: 9000, host: '10.1.2.3' } }).code).toBe('INVALID_ARGUMENT');
    expect(resolve({ management: { port: 9000, host: '::1' } }).management?.host).toBe('::1');
  });

  it('tells loopback hosts from the others', () => {
    for (const h of [
      '127.0.0.1',
      '127.8.9.10',
      'localhost',
      'LOCALHOST',
      '::1',
      '[::1]',
      '::ffff:127.0.0.1',
    ]) {
      expect(isLoopback(h), h).toBe(true);
    }
    for (const h of [
      '0.0.0.0',
      '::',
      '10.0.0.1',
      'example.com',
      '128.0.0.1',
      'localhost.evil.com',
    ]) {
      expect(isLoopback(h), h).toBe(false);
    }
  });

  it('checks the types the code gives', () => {
    expect(refusal({ management: { port: 1.5 } }).message).toContain('management.port');
    expect(refusal({ management: { port: 80, token: '' } }).message).toContain('management.token');
    expect(refusal({ management: 'on' as never }).message).toContain('management must be');
  });
});

describe('worker bounds', () => {
  it('refuses workers outside minWorkers..maxWorkers, from any source', () => {
    expect(refusal({ workers: 5, maxWorkers: 4 }).data).toEqual({ min: 1, max: 4, requested: 5 });
    expect(refusal({}, { CLUSTER_WORKERS: '1', CLUSTER_MIN_WORKERS: '2' }).message).toContain(
      'workers (1) must be within minWorkers..maxWorkers (2..no bound)',
    );
    expect(refusal({ minWorkers: 3, maxWorkers: 2 }).message).toContain(
      'minWorkers (3) must be <= maxWorkers (2)',
    );
  });

  it('brings the default worker count within the bounds', () => {
    const cores = os.availableParallelism();
    expect(resolve({ maxWorkers: 1 }).workers).toBe(1);
    expect(resolve({ minWorkers: cores + 2 }).workers).toBe(cores + 2);
    expect(resolve({}).maxWorkers).toBeUndefined();
    expect(resolve({}).minWorkers).toBe(1);
  });
});

describe('other new options', () => {
  it('logs is inherit, prefix or json', () => {
    expect(resolve({}).logs).toBe('inherit');
    expect(resolve({ logs: 'json' }).logs).toBe('json');
    expect(refusal({ logs: 'pretty' as never }).message).toContain("logs must be 'inherit'");
  });

  it('logClusterStats is a boolean or a duration in ms', () => {
    expect(resolve({ logClusterStats: 250 }).logClusterStatsMs).toBe(250);
    expect(refusal({ logClusterStats: 0 }).code).toBe('INVALID_ARGUMENT');
    expect(refusal({ logClusterStats: '5' as never }).message).toContain('logClusterStats');
  });
});
