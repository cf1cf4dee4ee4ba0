import { describe, expect, it } from 'vitest';
import { Kind, MARKER, parseFrame } from '../../src/protocol/envelope.js';

describe('parseFrame', () => {
  it.each([
    undefined,
    null,
    1,
    'str',
    [],
    { cmd: 'NODE_CLUSTER' },
    { k: 'req', i: 1, m: 'x' },
  ])('leaves a message without the marker alone: %j', (raw) => {
    expect(parseFrame(raw)).toEqual({ ok: false, foreign: true });
  });

  it.each([
    [{ [MARKER]: 2, k: Kind.request, i: 1, m: 'x' }, 'version'],
    [{ [MARKER]: 1, k: 'nonsense' }, 'unknown frame kind'],
    [{ [MARKER]: 1, k: Kind.request, i: -1, m: 'x' }, 'id'],
    [{ [MARKER]: 1, k: Kind.request, i: 1.5, m: 'x' }, 'id'],
    [{ [MARKER]: 1, k: Kind.request, i: 1, m: '' }, 'method'],
    [{ [MARKER]: 1, k: Kind.request, i: 1, m: 'x', t: 'everyone' }, 'target'],
    [{ [MARKER]: 1, k: Kind.response, i: 1, a: [{}] }, 'gather'],
    [{ [MARKER]: 1, k: Kind.error, i: 1 }, 'error'],
    [{ [MARKER]: 1, k: Kind.event, m: 't' }, 'source'],
    [{ [MARKER]: 1, k: Kind.handlers, m: [1] }, 'name list'],
  ])('reports a malformed frame of ours with a reason: %j', (raw, reason) => {
    const parsed = parseFrame(raw);
    expect(parsed.ok).toBe(false);
    if (parsed.ok || parsed.foreign) throw new Error('expected a malformed frame');
    expect(parsed.reason).toContain(reason);
  });

  it('accepts a well-formed request', () => {
    const frame = { [MARKER]: 1, k: Kind.request, i: 7, m: 'add', t: 'any', p: { a: 1 } };
    expect(parseFrame(frame)).toEqual({ ok: true, frame });
  });
});
