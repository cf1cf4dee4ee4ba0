/**
 * The management API's pure parts: option checks, the bearer check, the scale decision, the
 * operations' records, and the workers' request counter.
 */
import { EventEmitter } from 'eventemitter3';
import { describe, expect, it } from 'vitest';
import { HealthChecks } from '../../src/health/worker.js';
import type { ClusterApp, Contract, RestartResult } from '../../src/index.js';
import { BearerCheck } from '../../src/management/auth.js';
import { Operations, scaleBounds, scaleConflict } from '../../src/management/operations.js';
import { resolveManagementOptions } from '../../src/management/options.js';
import { isLoopback } from '../../src/supervisor/ops-options.js';
import { rejection } from '../rejection.js';

describe('resolveManagementOptions', () => {
  it('is undefined when absent, and applies the documented defaults', () => {
    expect(resolveManagementOptions(undefined)).toBeUndefined();
    expect(resolveManagementOptions({ port: 0 })).toEqual({
      port: 0,
      host: '127.0.0.1',
      token: undefined,
      maxBodyBytes: 16_384,
      requestTimeoutMs: 10_000,
      maxConcurrentRequests: 8,
    });
  });

  it('refuses a non-loopback host without a token, and bad values, with INVALID_ARGUMENT', async () => {
    for (const bad of [
      { port: 0, host: '0.0.0.0' },
      { port: 0, host: '::' },
      { port: 0, host: '10.1.2.3' },
      { port: 65_536 },
      { port: '9000' },
      { port: 0, token: 'a b' },
      { port: 0, maxConcurrentRequests: 0 },
      { port: 0, requestTimeoutMs: -1 },
      { port: 0, tokn: 'typo' },
      {},
    ]) {
      const error = await rejection(
        Promise.resolve().then(() => resolveManagementOptions(bad as never)),
      );
      expect(error.code, JSON.stringify(bad)).toBe('INVALID_ARGUMENT');
    }
    expect(resolveManagementOptions({ port: 0, host: '0.0.0.0', token: 't' })?.host).toBe(
      '0.0.0.0',
    );
  });

  it('knows the loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.9.9.9', '::1', 'localhost', '::ffff:127.0.0.1']) {
      expect(isLoopback(host), host).toBe(true);
    }
    for (const host of ['0.0.0.0', '::', '192.168.1.1', 'example.com', '128.0.0.1']) {
      expect(isLoopback(host), host).toBe(false);
    }
  });
});

describe('BearerCheck', () => {
  it('accepts only the token, as a Bearer header', () => {
    const check = new BearerCheck('s3cret');
    expect(check.check('Bearer s3cret')).toBe('ok');
    expect(check.check('bearer s3cret')).toBe('ok');
    expect(check.check(undefined)).toBe('missing');
    expect(check.check('Basic s3cret')).toBe('missing');
    expect(check.check('Bearer')).toBe('missing');
    expect(check.check('Bearer s3cre')).toBe('wrong');
    expect(check.check('Bearer s3cres')).toBe('wrong');
    expect(check.check('Bearer s3cret s3cret')).toBe('missing');
    expect(new BearerCheck(undefined).check('Bearer anything')).toBe('unset');
  });
});

describe('scale bounds', () => {
  it('reads minWorkers/maxWorkers defensively: 1 and unbounded otherwise', () => {
    expect(scaleBounds({})).toEqual({ min: 1, max: null });
    expect(scaleBounds({ minWorkers: 2 }, { maxWorkers: 5 })).toEqual({ min: 2, max: 5 });
    expect(scaleBounds({ minWorkers: 'x', maxWorkers: 0 })).toEqual({ min: 1, max: null });
  });

  it('scaleConflict says why a count is outside the bounds', () => {
    expect(scaleConflict(3, { min: 1, max: null })).toBeUndefined();
    expect(scaleConflict(1, { min: 2, max: 4 })).toBe('workers 1 is below the minimum of 2');
    expect(scaleConflict(5, { min: 2, max: 4 })).toBe('workers 5 is above the maximum of 4');
    expect(scaleConflict(4, { min: 2, max: 4 })).toBeUndefined();
  });
});

describe('Operations', () => {
  it('keeps the last 16 restarts; an older id is forgotten', async () => {
    const app = Object.assign(new EventEmitter(), {
      slots: { slots: [{ retired: false }, { retired: false }] },
      restart: (): Promise<RestartResult> =>
        Promise.resolve({ replaced: [{ slot: 0, from: 1, to: 3 }], durationMs: 1 }),
    });
    const ops = new Operations(app as unknown as ClusterApp<Contract>);
    const ids: string[] = [];
    for (let i = 0; i < 17; i++) {
      ids.push(ops.restart().id);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(new Set(ids).size).toBe(17);
    expect(ops.restartById(ids[0]!)).toBeUndefined();
    for (const id of ids.slice(1)) expect(ops.restartById(id)?.state).toBe('done');
    expect(ops.lastRestart()?.id).toBe(ids[16]);
    expect(ops.restartById(ids[16]!)).toMatchObject({
      total: 2,
      replaced: 1,
      slots: [{ slot: 0, from: 1, to: 3 }],
      error: null,
    });
    ops.close();
    expect(app.listenerCount('worker:replace') + app.listenerCount('worker:ready')).toBe(0);
  });
});

describe('bus.health.countRequests', () => {
  const source = { workerId: 1, slot: () => 0, inFlight: () => 0, configVersion: () => 0 };

  it('is absent from the report until the app counts, then carries the sum', async () => {
    const checks = new HealthChecks(source);
    expect((await checks.report(10)).requests).toBeUndefined();
    checks.countRequests();
    checks.countRequests(4);
    checks.countRequests(0);
    const report = await checks.report(10);
    expect(report.requests).toBe(5);
    expect(report.callsServed).toBe(0);
    checks.stop();
  });

  it('throws INVALID_ARGUMENT for anything but a non-negative safe integer', () => {
    const checks = new HealthChecks(source);
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1', 2 ** 53]) {
      expect(() => checks.countRequests(bad as number), String(bad)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });
});
