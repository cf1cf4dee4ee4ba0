/** The config protocol over in-memory links: welcome, updates, acks, refusals, order, catch-up. */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ClusterConfig, configHub, loadInitialConfig } from '../../src/config/extension.js';
import type { ConfigUpdateResult } from '../../src/config/types.js';
import { type WorkerBus, workerBus } from '../../src/connect.js';
import { BusError, defineContract } from '../../src/index.js';
import { type PrimaryBus, primaryBus } from '../../src/primary-bus.js';
import { memoryPair } from '../../src/transport/memory.js';
import { expectForbiddenBetweenWorkers, harnessPerTest } from './helpers.js';

const contract = defineContract({
  config: z.object({ level: z.number().int().min(0), at: z.date() }),
  methods: { ping: {} },
});
type C = typeof contract;
const AT = new Date('2024-06-01T00:00:00Z');
const start = harnessPerTest(contract);

interface Rig {
  readonly primary: PrimaryBus<C>;
  readonly workers: WorkerBus<C>[];
  readonly config: ClusterConfig<C>;
  readonly welcomeErrors: Array<BusError | undefined>;
  readonly updates: ConfigUpdateResult[];
  /** Adds a worker (id = count + 1, slot = index) and resolves once it is routable. */
  add(): Promise<WorkerBus<C>>;
}

let rig: Rig | undefined;
afterEach(async () => {
  if (rig === undefined) return;
  await Promise.all(rig.workers.map((w) => w.close()));
  await rig.primary.close();
  expect(rig.primary.pendingCount).toBe(0);
  rig = undefined;
});

async function setup(count: number, initial: unknown = { level: 1, at: AT }): Promise<Rig> {
  const waiting = new Map<number, () => void>();
  const workers: WorkerBus<C>[] = [];
  const welcomeErrors: Array<BusError | undefined> = [];
  const updates: ConfigUpdateResult[] = [];
  const primary = primaryBus(
    contract,
    {},
    {
      connected: (id) => waiting.get(id)?.(),
      welcome: (id) => ({ slot: id - 1 }),
      resolveSlot: (slot) => (slot < workers.length ? slot + 1 : undefined),
    },
  );
  const parsed = contract.config!.parse(initial);
  const config = primary.install(
    configHub(
      contract,
      {
        targets: () => primary.connectedWorkers().map((id) => ({ workerId: id, slot: id - 1 })),
        closing: () => primary.isClosed,
        updated: (r) => updates.push(r),
        error: () => {},
        ackTimeoutMs: 1_000,
        configFile: undefined,
      },
      { value: parsed, raw: initial },
    ),
  );
  const add = async () => {
    const id = workers.length + 1;
    const pair = memoryPair();
    const ready = new Promise<void>((r) => waiting.set(id, r));
    primary.attachLink(id, pair.a);
    const worker = workerBus(contract, pair.b, id, {}, (e) => welcomeErrors.push(e));
    workers.push(worker);
    await ready;
    return worker;
  };
  rig = { primary, workers, config, welcomeErrors, updates, add };
  for (let i = 0; i < count; i++) await add();
  return rig;
}

describe('welcome', () => {
  it('carries the slot and the current config, parsed by the worker’s schema', async () => {
    const { workers, welcomeErrors } = await setup(2);
    expect(welcomeErrors).toEqual([undefined, undefined]);
    expect(workers.map((w) => w.slot)).toEqual([0, 1]);
    for (const w of workers) {
      expect(w.config.version).toBe(1);
      expect(w.config.current).toEqual({ level: 1, at: AT });
      expect(w.config.current.at).toBeInstanceOf(Date);
    }
  });

  it('fails the worker’s connect with VALIDATION when no config or a bad one arrives', async () => {
    const pair = memoryPair();
    const errors: Array<BusError | undefined> = [];
    const primary = primaryBus(
      contract,
      {},
      {
        connected: () => {},
        welcome: () => ({ slot: 0, config: { version: 3, value: { level: -1, at: AT } } }),
      },
    );
    primary.attachLink(1, pair.a);
    const worker = workerBus(contract, pair.b, 1, {}, (e) => errors.push(e));
    const bare = memoryPair();
    const primary2 = primaryBus(contract, {}, { connected: () => {} });
    primary2.attachLink(1, bare.a);
    const worker2 = workerBus(contract, bare.b, 1, {}, (e) => errors.push(e));
    await new Promise((r) => setTimeout(r, 20));
    expect(errors.map((e) => e?.code)).toEqual(['VALIDATION', 'VALIDATION']);
    expect(errors[0]!.issues?.[0]?.path).toEqual(['level']);
    expect(errors[1]!.message).toContain('sent no config');
    await Promise.all([worker.close(), worker2.close(), primary.close(), primary2.close()]);
  });
});

describe('ClusterConfig.update', () => {
  it('validates, numbers, sends, and gathers every acknowledgement', async () => {
    const { config, workers, updates } = await setup(2);
    const result = await config.update({ level: 2, at: AT });
    expect(result).toEqual({
      version: 2,
      accepted: true,
      workers: [
        { workerId: 1, slot: 0, status: 'accepted' },
        { workerId: 2, slot: 1, status: 'accepted' },
      ],
    });
    expect(updates).toEqual([result]);
    for (const w of workers) expect(w.config).toMatchObject({ version: 2, current: { level: 2 } });
  });

  it('rejects an invalid config with VALIDATION before sending anything', async () => {
    const { config, workers, updates } = await setup(1);
    let called = 0;
    workers[0]!.config.onChange(() => {
      called++;
    });
    const error = await config.update({ level: -5, at: AT }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BusError);
    expect((error as BusError).code).toBe('VALIDATION');
    expect(config.version).toBe(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(called).toBe(0);
    expect(updates).toEqual([]);
  });

  it('reports a refusal: the worker keeps its config, the others move on', async () => {
    const { config, workers } = await setup(2);
    workers[1]!.config.onChange((next, previous, info) => {
      expect(previous).toEqual({ level: 1, at: AT });
      expect(info).toEqual({ version: 2, previousVersion: 1 });
      if (next.level > 5) throw new TypeError('too high');
    });
    const result = await config.update({ level: 9, at: AT });
    expect(result.accepted).toBe(false);
    expect(result.workers[0]).toEqual({ workerId: 1, slot: 0, status: 'accepted' });
    expect(result.workers[1]).toMatchObject({ workerId: 2, slot: 1, status: 'refused' });
    expect(result.workers[1]!.error?.code).toBe('REMOTE');
    expect(result.workers[1]!.error?.message).toContain('too high');
    expect(workers[0]!.config.version).toBe(2);
    expect(workers[1]!.config).toMatchObject({ version: 1, current: { level: 1 } });
  });

  it('applies concurrent updates one at a time, in version order', async () => {
    const { config, workers } = await setup(1);
    const seen: number[] = [];
    workers[0]!.config.onChange(async (next) => {
      await new Promise((r) => setTimeout(r, 10 - next.level));
      seen.push(next.level);
    });
    await Promise.all([3, 4, 5, 6].map((level) => config.update({ level, at: AT })));
    expect(seen).toEqual([3, 4, 5, 6]);
    expect(workers[0]!.config.version).toBe(5);
  });

  it('welcomes a late worker with the latest version, and catches up one welcomed earlier', async () => {
    const r = await setup(1);
    await r.config.update({ level: 4, at: AT });
    const late = await r.add();
    expect(late.config).toMatchObject({ version: 2, current: { level: 4 } });
    // One welcomed with version 2 that became ready after version 3 was sent to the others.
    await r.config.update({ level: 5, at: AT });
    r.config.catchUp({ workerId: 2, slot: 1 }, 2);
    const deadline = performance.now() + 1_000;
    while (late.config.version < 3 && performance.now() < deadline) {
      await new Promise((res) => setTimeout(res, 5));
    }
    expect(late.config).toMatchObject({ version: 3, current: { level: 5 } });
  });

  it('refuses without a schema (INVALID_ARGUMENT) and once closed (CLOSED)', async () => {
    const bare = defineContract({ methods: { ping: {} } });
    await expect(loadInitialConfig(bare, { a: 1 }, undefined)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(loadInitialConfig(bare, undefined, undefined)).resolves.toBeUndefined();
    await expect(loadInitialConfig(contract, { level: 'x' }, undefined)).rejects.toMatchObject({
      code: 'VALIDATION',
    });
    const { config, primary } = await setup(1);
    await primary.close();
    await expect(config.update({ level: 1, at: AT })).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe('the config extension on a memory harness', () => {
  it("refuses a worker's $config.apply routed to another worker with FORBIDDEN; the next update applies everywhere", async () => {
    let config!: ClusterConfig<C>;
    const initial = { level: 1, at: AT };
    const h = await start(2, {
      install: (primary) => {
        config = primary.install(
          configHub(
            contract,
            {
              targets: () =>
                primary.connectedWorkers().map((id) => ({ workerId: id, slot: id - 1 })),
              closing: () => primary.isClosed,
              updated: () => {},
              error: () => {},
              ackTimeoutMs: 1_000,
              configFile: undefined,
            },
            { value: contract.config!.parse(initial), raw: initial },
          ),
        );
      },
    });
    await expectForbiddenBetweenWorkers(h, '$config.apply', { v: 99, value: { level: 7, at: AT } });
    expect(h.workers[1]!.config).toMatchObject({ version: 1, current: { level: 1 } });
    const result = await config.update({ level: 2, at: AT });
    expect(result.accepted).toBe(true);
    for (const w of h.workers)
      expect(w.config).toMatchObject({ version: 2, current: { level: 2 } });
  });
});
