/** An in-memory primary + workers harness for protocol unit tests: no processes, no cluster. */
import { afterEach, expect } from 'vitest';
import { type WorkerBus, workerBus } from '../../src/connect.js';
import type { Contract } from '../../src/contract.js';
import type { BusError } from '../../src/errors.js';
import { type PrimaryBus, primaryBus } from '../../src/primary-bus.js';
import { StoreHost, type StoreHostConfig } from '../../src/state/host.js';
import { type MemoryPair, memoryPair } from '../../src/transport/memory.js';
import { type ForgingChannel, forgeRequest } from '../forge.js';

export { forgeRequest } from '../forge.js';
export { rejection } from '../rejection.js';

/** The worker end of `pair` as a hostile worker's raw channel, for {@link forgeRequest}. */
export function rawChannel(pair: MemoryPair): ForgingChannel {
  return { send: (m) => pair.b.send(m, () => {}), onMessage: (l) => pair.b.onMessage(l) };
}

export interface Harness<C extends Contract> {
  readonly primary: PrimaryBus<C>;
  readonly workers: WorkerBus<C>[];
  readonly pairs: MemoryPair[];
  /** Cuts worker `index`'s link, as its death would. */
  kill(index: number): void;
  /** Closes everything and returns what is left pending (should be 0). */
  close(): Promise<number>;
}

/** Options of {@link harness}: the buses' own, and what to install on the primary first. */
export interface HarnessOptions<C extends Contract> {
  callTimeoutMs?: number;
  maxPayloadBytes?: number;
  maxQueueBytes?: number;
  maxDepth?: number;
  /** Installs hub extensions on the primary (`primary.install(…)`) before any worker connects. */
  install?: (primary: PrimaryBus<C>) => void;
}

/** Starts a primary bus and `count` worker buses (ids 1..count) joined by in-memory links. */
export async function harness<C extends Contract>(
  contract: C,
  count: number,
  harnessOptions: HarnessOptions<C> = {},
): Promise<Harness<C>> {
  const { install, ...options } = harnessOptions;
  let ready = 0;
  let allReady!: () => void;
  const readyPromise = new Promise<void>((r) => (allReady = r));
  // Routable once the primary has the worker's 'ready', as startCluster waits for.
  const primary = primaryBus(contract, options, {
    connected: () => {
      if (++ready === count) allReady();
    },
  });
  install?.(primary);
  const workers: WorkerBus<C>[] = [];
  const pairs: MemoryPair[] = [];
  for (let id = 1; id <= count; id++) {
    const pair = memoryPair();
    pairs.push(pair);
    primary.attachLink(id, pair.a);
    workers.push(workerBus(contract, pair.b, id, options, () => {}));
  }
  await readyPromise;
  primary.release(); // as startCluster does once every worker is ready
  return {
    primary,
    workers,
    pairs,
    kill(index) {
      pairs[index]!.cut();
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await primary.close();
      return primary.pendingCount + workers.reduce((n, w) => n + w.pendingCount, 0);
    },
  };
}

/**
 * A {@link harness} starter for one test at a time: each harness it starts is closed after its
 * test, which fails if anything is left pending. Call it at the top level of a test file.
 */
export function harnessPerTest<C extends Contract>(
  contract: C,
): (count: number, options?: HarnessOptions<C>) => Promise<Harness<C>> {
  let current: Harness<C> | undefined;
  afterEach(async () => {
    const h = current;
    current = undefined;
    if (h !== undefined) expect(await h.close()).toBe(0);
  });
  return async (count, options) => {
    current = await harness(contract, count, options);
    return current;
  };
}

/** A {@link harness} with the primary's store host open on it. */
export interface StoreHarness<C extends Contract> extends Harness<C> {
  readonly host: StoreHost;
}

/**
 * As {@link harnessPerTest}, with a store host (`hostOptions`, e.g. `maxEntries`) open on the
 * primary: after its test, the host closes, then the harness, which fails if anything is left
 * pending. Call it at the top level of a test file.
 */
export function storesPerTest<C extends Contract>(
  contract: C,
): (count: number, hostOptions?: StoreHostConfig<C>) => Promise<StoreHarness<C>> {
  let current: StoreHarness<C> | undefined;
  afterEach(async () => {
    const h = current;
    current = undefined;
    if (h === undefined) return;
    await h.host.close();
    expect(await h.close()).toBe(0);
  });
  return async (count, hostOptions) => {
    const h = await harness(contract, count);
    current = { ...h, host: await StoreHost.open(h.primary, hostOptions) };
    return current;
  };
}

/** Waits until `check` returns true, polling every 5 ms, failing after `ms`. */
export async function until(check: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Forges system request `method` from worker 1 of `h` to worker 2 with every kind of target (its
 * id, `'any'`, `'all'`, its slot), and expects each refused by the hub with `FORBIDDEN` and
 * reported on the primary's `error` event.
 */
export async function expectForbiddenBetweenWorkers<C extends Contract>(
  h: Harness<C>,
  method: string,
  payload: unknown,
): Promise<void> {
  const errors: BusError[] = [];
  const listener = (e: BusError) => errors.push(e);
  h.primary.on('error', listener);
  try {
    const raw = rawChannel(h.pairs[0]!);
    for (const fields of [{ t: 2 }, { t: 'any' }, { t: 'all' }, { n: 1 }]) {
      const answer = await forgeRequest(raw, method, payload, 5_000, fields);
      expect(answer.ok, JSON.stringify(fields)).toBe(false);
      if (!answer.ok) expect(answer.error.code).toBe('FORBIDDEN');
    }
    expect(errors.filter((e) => e.code === 'FORBIDDEN')).toHaveLength(4);
  } finally {
    h.primary.off('error', listener);
  }
}
