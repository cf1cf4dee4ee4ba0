/**
 * Snapshot persistence of the store host: a reload gives back values, revisions, expiries and
 * the fencing token; writes are atomic; a missing file is an empty start and a corrupt one a
 * clear PERSIST_FAILED.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PrimaryBus } from '../../src/bus/primary.js';
import { type BusError, defineContract } from '../../src/index.js';
import { StoreHost } from '../../src/state/host.js';
import { decodeSnapshot, encodeSnapshot } from '../../src/state/persist.js';
import { rejection, until } from './helpers.js';

const contract = defineContract({
  stores: {
    hits: z.number(),
    sessions: z.object({ user: z.string(), at: z.date() }),
  },
});

let dir: string;
let file: string;
const open: Array<{ host: StoreHost; bus: PrimaryBus<typeof contract> }> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterbus-store-'));
  file = join(dir, 'state', 'stores.snapshot');
});

afterEach(async () => {
  for (const { host, bus } of open.splice(0)) {
    await host.close();
    await bus.close();
  }
  await rm(dir, { recursive: true, force: true });
});

/** A primary bus alone (no workers) with its host: the primary's own client reaches it. */
async function primaryWithHost(intervalMs = 60_000, reported: BusError[] = []) {
  const bus = new PrimaryBus(contract, {}, { connected: () => {} });
  const host = await StoreHost.open(bus, {
    persist: { file, intervalMs },
    report: (e) => reported.push(e),
  });
  open.push({ host, bus });
  return { bus, host };
}

async function closeAll(): Promise<void> {
  for (const { host, bus } of open.splice(0)) {
    await host.close();
    await bus.close();
  }
}

describe('persistence', () => {
  it('starts empty without a file, and reloads values, revisions, expiries and the token', async () => {
    const first = await primaryWithHost();
    expect(await first.bus.store('hits').keys()).toEqual([]);
    const at = new Date('2024-05-06T07:08:09Z');
    await first.bus.store('hits').increment('a', 41);
    await first.bus.store('hits').increment('a');
    await first.bus.store('hits').set('ttl', 1, { ttlMs: 60_000 });
    await first.bus.store('hits').set('gone', 1);
    await first.bus.store('hits').delete('gone');
    await first.bus.store('sessions').set('s', { user: 'ann', at });
    const lease = await first.bus.lock('l');
    await lease.release();
    const ttlEntry = await first.bus.store('hits').entry('ttl');
    await closeAll(); // writes the last snapshot

    const second = await primaryWithHost();
    const hits = second.bus.store('hits');
    expect(await hits.entry('a')).toEqual({ value: 42, revision: 2 });
    expect(await hits.entry('ttl')).toEqual(ttlEntry);
    expect(await hits.keys()).toEqual(['a', 'ttl']);
    const session = await second.bus.store('sessions').get('s');
    expect(session?.at).toBeInstanceOf(Date);
    expect(session?.at.getTime()).toBe(at.getTime());
    // Revisions go on from where they were; tokens keep growing.
    expect(await hits.set('b', 1)).toBe(6);
    expect((await second.bus.lock('l')).token).toBeGreaterThan(lease.token);
  });

  it('writes a snapshot every intervalMs when something changed, atomically', async () => {
    const { bus } = await primaryWithHost(20);
    await bus.store('hits').set('k', 1);
    await until(() => {
      try {
        return decodeSnapshot(readFileSync(file, 'utf8'), file).stores.hits?.entries.length === 1;
      } catch {
        return false;
      }
    }, 5_000);
    // Only the snapshot: no temporary file left next to it.
    expect(await readdir(join(dir, 'state'))).toEqual(['stores.snapshot']);
  });

  it('does not reload entries that expired while the cluster was down', async () => {
    const first = await primaryWithHost();
    await first.bus.store('hits').set('short', 1, { ttlMs: 30 });
    await first.bus.store('hits').set('long', 1, { ttlMs: 60_000 });
    await closeAll();
    await new Promise((r) => setTimeout(r, 40));
    const second = await primaryWithHost();
    expect(await second.bus.store('hits').keys()).toEqual(['long']);
  });

  it('reports a truncated file clearly with PERSIST_FAILED, naming the file', async () => {
    const first = await primaryWithHost();
    await first.bus.store('hits').set('k', 1);
    await closeAll();
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.slice(0, Math.floor(text.length / 2)));
    const bus = new PrimaryBus(contract, {}, { connected: () => {} });
    try {
      const error = await rejection(StoreHost.open(bus, { persist: { file } }));
      expect(error.code).toBe('PERSIST_FAILED');
      expect(error.message).toContain(file);
      expect(error.message).toMatch(/corrupt/);
    } finally {
      await bus.close();
    }
  });

  it('reports a file that is JSON but not a snapshot, or an inconsistent one', async () => {
    const bus = new PrimaryBus(contract, {}, { connected: () => {} });
    try {
      await writeFile(file.replace('state/', ''), JSON.stringify({ hello: 'world' }));
      const error = await rejection(
        StoreHost.open(bus, { persist: { file: file.replace('state/', '') } }),
      );
      expect(error.code).toBe('PERSIST_FAILED');
      expect(error.message).toContain('not a clusterbus store snapshot');
    } finally {
      await bus.close();
    }
    const bad = encodeSnapshot({
      savedAt: 0,
      token: 0,
      stores: { hits: { revision: 1, entries: [['k', 1, 5, null]] } },
    });
    expect(() => decodeSnapshot(bad, 'f')).toThrowError(/inconsistent/);
  });

  it('clears every timer it armed when it closes', async () => {
    const live = trackTimers();
    // The store code's own timers; the bus's pending-call timer is the bus's business.
    try {
      const { bus, host } = await primaryWithHost(1_000);
      await bus.store('hits').set('ttl', 1, { ttlMs: 60_000 }); // the expiry timer
      const lease = await bus.lock('l', { ttlMs: 60_000 }); // a lease timer
      const waiting = bus.lock('l', { waitMs: 60_000 }).catch((e: BusError) => e.code); // a waiter's
      await until(() => host.stats().waiters === 1);
      expect(live.size).toBeGreaterThanOrEqual(4); // and the snapshot interval
      await host.close();
      expect(await waiting).toBe('CLOSED');
      expect(lease.token).toBe(1);
      expect(live.size).toBe(0);
    } finally {
      live.restore();
    }
  });

  it('reports a failed write on its report callback, and keeps serving', async () => {
    const reported: BusError[] = [];
    const { bus } = await primaryWithHost(10, reported);
    // The snapshot's directory becomes a file: every write fails.
    await writeFile(join(dir, 'state'), 'not a directory');
    await bus.store('hits').set('k', 1);
    await until(() => reported.length > 0, 5_000);
    expect(reported[0]!.code).toBe('PERSIST_FAILED');
    expect(await bus.store('hits').get('k')).toBe(1);
  });
});

/** Whether the caller of the timer function is the store code (src/state/), not the bus's. */
function fromState(): boolean {
  const stack = new Error().stack ?? '';
  return /src[/\\]state[/\\]/.test(stack.split('\n').slice(3, 4).join(''));
}

/**
 * Records the timers and intervals the store code (src/state/) arms from now on and that have
 * not fired or been cleared yet.
 */
function trackTimers(): Set<unknown> & { restore(): void } {
  const live = new Set<unknown>() as Set<unknown> & { restore(): void };
  const g = globalThis as unknown as Record<string, (...args: unknown[]) => unknown>;
  const saved = { ...pick(g, ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval']) };
  g.setTimeout = (fn: unknown, ...rest: unknown[]) => {
    const handle = saved.setTimeout!(
      () => {
        live.delete(handle);
        (fn as () => void)();
      },
      ...rest,
    );
    if (fromState()) live.add(handle);
    return handle;
  };
  g.setInterval = (...args: unknown[]) => {
    const handle = saved.setInterval!(...args);
    if (fromState()) live.add(handle);
    return handle;
  };
  g.clearTimeout = (handle: unknown) => {
    live.delete(handle);
    return saved.clearTimeout!(handle);
  };
  g.clearInterval = (handle: unknown) => {
    live.delete(handle);
    return saved.clearInterval!(handle);
  };
  live.restore = () => Object.assign(g, saved);
  return live;
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<T> {
  const out: Partial<T> = {};
  for (const k of keys) out[k] = o[k];
  return out;
}
