import { describe, expect, it } from 'vitest';
import { BusError, isBusErrorJSON, RemoteError, toRemoteError } from '../../src/errors.js';

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
