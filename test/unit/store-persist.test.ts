/**
 * Snapshot persistence of the store host: a reload gives back values, revisions, expiries and
 * the fencing token; writes are atomic; a missing file is an empty start and a corrupt one a
 * clear PERSIST_FAILED; a directory that cannot be written fails the start; leftover temporary
 * files are removed at start; a failed snapshot stays due, and a failed last one fails close().
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import superjson from 'superjson';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type BusError, defineContract } from '../../src/index.js';
import { type PrimaryBus, primaryBus } from '../../src/primary-bus.js';
import { StoreHost } from '../../src/state/host.js';
import {
  decodeSnapshot,
  encodeSnapshot,
  type SnapshotData,
  SnapshotWriter,
} from '../../src/state/persist.js';
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
  const bus = primaryBus(contract, {}, { connected: () => {} });
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
    await until(() => snapshotOnDisk()?.stores.hits?.entries.length === 1, 5_000);
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
    const bus = primaryBus(contract, {}, { connected: () => {} });
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
    const bus = primaryBus(contract, {}, { connected: () => {} });
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

  it('reports a failed write on its report callback, keeps serving, and retries it', async () => {
    const reported: BusError[] = [];
    const { bus } = await primaryWithHost(10, reported);
    // The snapshot's directory (made at start) becomes a file: every write fails.
    await rm(join(dir, 'state'), { recursive: true });
    await writeFile(join(dir, 'state'), 'not a directory');
    await bus.store('hits').set('k', 1);
    await until(() => reported.length > 0, 5_000);
    expect(reported[0]!.code).toBe('PERSIST_FAILED');
    expect(await bus.store('hits').get('k')).toBe(1);
    // The directory is back: a later interval writes the change, with no new write to prompt it.
    await rm(join(dir, 'state'));
    await until(() => snapshotOnDisk()?.stores.hits?.entries.length === 1, 5_000);
  });
});

describe('persistence: start and close', () => {
  it('removes the temporary files a killed primary left next to the snapshot, and nothing else', async () => {
    const state = join(dir, 'state');
    await mkdir(state, { recursive: true });
    const leftovers = [
      'stores.snapshot.V1StGXR8_Z.tmp',
      'stores.snapshot.-_aZ09bcDe.tmp',
      'stores.snapshot.0000000000.tmp',
    ];
    const unrelated = [
      'notes.txt',
      'stores.snapshot.bak',
      'stores.snapshot.short.tmp', // not a 10-character id
      'stores.snapshot.V1StGXR8_Z.tmp.keep',
      'other.snapshot.V1StGXR8_Z.tmp', // another file's
    ];
    for (const name of [...leftovers, ...unrelated]) await writeFile(join(state, name), 'x');
    await primaryWithHost();
    expect((await readdir(state)).sort()).toEqual([...unrelated].sort());
  });

  it('refuses to start with PERSIST_FAILED, naming the path, when the snapshot cannot be written there', async () => {
    // Both fail for root too: a path through a regular file, and a name so long that no
    // temporary file can be made next to it (the snapshot itself is merely missing).
    await writeFile(join(dir, 'file-not-dir'), 'x');
    const paths = [join(dir, 'file-not-dir', 'snap.json'), join(dir, 's'.repeat(245))];
    for (const path of paths) {
      const bus = primaryBus(contract, {}, { connected: () => {} });
      try {
        const error = await rejection(StoreHost.open(bus, { persist: { file: path } }));
        expect(error.code).toBe('PERSIST_FAILED');
        expect(error.message).toContain(path);
      } finally {
        await bus.close();
      }
    }
  });

  it('keeps the state dirty after a snapshot fails to be made, and makes it at the next interval', async () => {
    const reported: BusError[] = [];
    const good: SnapshotData = {
      savedAt: 1,
      token: 0,
      stores: { hits: { revision: 1, entries: [['k', 1, 1, null]] } },
    };
    // A value nothing can encode (superjson refuses the key next to a Date), then a good cut.
    const bad: SnapshotData = {
      savedAt: 1,
      token: 0,
      stores: { hits: { revision: 1, entries: [['k', { constructor: new Date(0) }, 1, null]] } },
    };
    let takes = 0;
    const writer = new SnapshotWriter(
      file,
      10,
      () => (++takes === 1 ? bad : good),
      (e) => reported.push(e),
    );
    try {
      writer.markDirty();
      await until(() => snapshotOnDisk()?.stores.hits?.entries.length === 1, 5_000);
      expect(reported.map((e) => e.code)).toEqual(['PERSIST_FAILED']);
      expect(reported[0]!.message).toContain("store 'hits' key 'k'");
      expect(takes).toBe(2);
    } finally {
      await writer.close();
    }
  });

  it('rejects close() with PERSIST_FAILED when the last snapshot cannot be written, closed anyway', async () => {
    const { bus, host } = await primaryWithHost();
    open.splice(0); // closed here
    await bus.store('hits').set('k', 1);
    await rm(join(dir, 'state'), { recursive: true });
    await writeFile(join(dir, 'state'), 'not a directory');
    const error = await rejection(host.close());
    expect(error.code).toBe('PERSIST_FAILED');
    expect(error.message).toContain(file);
    expect(await rejection(host.close())).toBe(error); // idempotent: the same outcome
    expect(host.stats()).toMatchObject({ watches: 0, leases: 0, waiters: 0 });
    await bus.close();
  });

  it('loads a snapshot of format 1 (one superjson document), as the version before wrote it', async () => {
    const at = new Date('2024-05-06T07:08:09Z');
    await mkdir(join(dir, 'state'), { recursive: true });
    await writeFile(
      file,
      superjson.stringify({
        format: 'clusterbus.store',
        version: 1,
        savedAt: Date.now(),
        token: 3,
        stores: {
          hits: { revision: 2, entries: [['a', 7, 2, null]] },
          sessions: { revision: 1, entries: [['s', { user: 'ann', at }, 1, null]] },
        },
      }),
    );
    const { bus } = await primaryWithHost();
    expect(await bus.store('hits').entry('a')).toEqual({ value: 7, revision: 2 });
    expect((await bus.store('sessions').get('s'))?.at).toEqual(at);
    expect(await bus.store('hits').set('b', 1)).toBe(3);
    expect((await bus.lock('l')).token).toBe(4);
  });
});

/** The snapshot at `file`, or undefined while there is none (or it is being replaced). */
function snapshotOnDisk(): ReturnType<typeof decodeSnapshot> | undefined {
  try {
    return decodeSnapshot(readFileSync(file, 'utf8'), file);
  } catch {
    return undefined;
  }
}

/**
 * Whether the caller of the timer function is the store code (src/state/), not the bus's: the
 * first frame past the timer function outside the shared helpers of src/util/.
 */
function fromState(): boolean {
  const frames = (new Error().stack ?? '').split('\n').slice(3);
  const caller = frames.find((f) => !/src[/\\]util[/\\]/.test(f)) ?? '';
  return /src[/\\]state[/\\]/.test(caller);
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
