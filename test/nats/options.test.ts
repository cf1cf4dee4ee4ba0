/**
 * natsMesh's options and the presence table, without a server: checks and defaults, version
 * comparison, when a node is gone.
 */
import { describe, expect, it } from 'vitest';
import { BusError } from '../../src/index.js';
import { natsMesh } from '../../src/nats/index.js';
import { atLeast, resolveMeshOptions } from '../../src/nats/options.js';
import { Presence } from '../../src/nats/presence.js';

function refusal(fn: () => unknown): BusError {
  try {
    fn();
  } catch (error) {
    return error as BusError;
  }
  throw new Error('did not throw');
}

describe('natsMesh options', () => {
  it('takes a URL or a list of URLs, and applies the documented defaults', () => {
    const one = resolveMeshOptions({ servers: 'nats://h:4222', node: 'host-a' });
    expect(one).toMatchObject({
      servers: ['nats://h:4222'],
      prefix: 'clusterbus',
      heartbeatMs: 1_000,
      goneAfterMs: 3_000,
      localFirst: true,
      replicas: undefined,
      casMode: 'auto',
      startTimeoutMs: 20_000,
    });
    expect(resolveMeshOptions({ servers: ['nats://a', 'nats://b'], node: 'n' }).servers).toEqual([
      'nats://a',
      'nats://b',
    ]);
    expect(natsMesh({ servers: 'nats://h', node: 'host-b' }).node).toBe('host-b');
  });

  it('refuses bad options with INVALID_ARGUMENT, naming the option', () => {
    const cases: Array<[object, string]> = [
      [{ servers: [], node: 'a' }, 'servers'],
      [{ servers: 'nats://h', node: 'a.b' }, 'node'],
      [{ servers: 'nats://h', node: 'a', prefix: 'x y' }, 'prefix'],
      [{ servers: 'nats://h', node: 'a', heartbeatMs: 0 }, 'heartbeatMs'],
      [{ servers: 'nats://h', node: 'a', heartbeatMs: 1000, goneAfterMs: 1500 }, 'goneAfterMs'],
      [{ servers: 'nats://h', node: 'a', replicas: 7 }, 'replicas'],
      [{ servers: 'nats://h', node: 'a', casMode: 'x' }, 'casMode'],
    ];
    for (const [options, name] of cases) {
      const e = refusal(() => natsMesh(options as never));
      expect(e).toBeInstanceOf(BusError);
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.message).toContain(name);
    }
  });

  it('compares server versions', () => {
    expect(atLeast('2.9.10', 2, 10, 19)).toBe(false);
    expect(atLeast('2.10.19', 2, 10, 19)).toBe(true);
    expect(atLeast('2.10.20-RC.1', 2, 10, 19)).toBe(true);
    expect(atLeast('3.0.0', 2, 10, 19)).toBe(true);
  });
});

describe('presence', () => {
  it('a node not heard for goneAfterMs is gone until heard again; a goodbye drops it at once', () => {
    const events: string[] = [];
    const p = new Presence('a', 'H', 3_000, {
      joined: (n, mismatch) => events.push(`joined ${n}${mismatch ? ' (mismatch)' : ''}`),
      gone: (n) => events.push(`gone ${n}`),
    });
    p.heard({ n: 'b', h: 'H', w: [[1, ['add']]] }, 0);
    p.heard({ n: 'c', h: 'other', w: [] }, 0);
    expect(p.live()).toEqual(['b']);
    expect(p.mismatch('c')).toBe(true);
    p.sweep(2_999);
    expect(p.isGone('b')).toBe(false);
    p.sweep(3_001);
    expect(p.isGone('b')).toBe(true);
    expect(p.live()).toEqual([]);
    p.heard({ n: 'b', h: 'H', w: [] }, 4_000);
    expect(p.isGone('b')).toBe(false);
    p.heard({ n: 'b', h: '', w: [], b: 1 }, 4_100);
    expect(p.isGone('b')).toBe(true);
    expect(events).toEqual([
      'joined b',
      'joined c (mismatch)',
      'gone b',
      'gone c',
      'joined b',
      'gone b',
    ]);
    expect(p.view([]).map((n) => n.node)).toEqual(['a']);
  });
});
