/**
 * clusterbus as users run it: `startCluster` in the primary, `connect` in each worker, full
 * validation (every input, output and event checked against the contract's zod schemas).
 *
 * @module
 */
import { connect, startCluster } from '../src/index.js';
import { contract } from './contract.js';
import { EventCounter, runJob, type WorkerApi } from './jobs.js';
import { ENTRY, IMPL_ENV, type Session, START_TIMEOUT_MS } from './session.js';

/** Long enough for any job: the case's own deadline applies first. */
const JOB_TIMEOUT_MS = 600_000;

/**
 * What case F needs of the shared store: `bus.store('counter').increment(key, by)`. Looked up at
 * run time, so the suite also runs against a clusterbus without stores (F is then skipped).
 */
interface CounterStore {
  increment(key: string, by: number): Promise<number>;
}

/** The bus's store accessor, if this version of clusterbus has one. */
export function counterStore(bus: object): CounterStore | undefined {
  const store = (bus as { store?: unknown }).store;
  if (typeof store !== 'function') return undefined;
  return (store as (name: string) => CounterStore).call(bus, 'counter');
}

/** Starts a fresh clusterbus cluster: `startCluster`, no restarts (a crash aborts the case). */
export async function startClusterbus(count: number): Promise<Session> {
  const app = await startCluster({
    contract,
    workers: count,
    exec: ENTRY,
    args: [],
    execArgv: process.execArgv,
    env: { [IMPL_ENV]: 'clusterbus' },
    restart: false,
    // 16 workers loading tsx on a busy 2-core machine can take longer than the default 30 s.
    readyTimeoutMs: START_TIMEOUT_MS,
  });
  const failed = new Promise<never>((_, reject) => {
    app.on('worker:exit', (e) => {
      if (!e.planned) {
        reject(
          new Error(
            `worker ${e.workerId} exited unexpectedly (code ${e.code}, signal ${e.signal})`,
          ),
        );
      }
    });
  });
  failed.catch(() => {});
  return {
    workers: app.workers().map((w) => w.id),
    echo: (worker, payload) =>
      'items' in payload
        ? app.bus.call(worker, 'echo', payload)
        : app.bus.call(worker, 'echoStr', payload),
    callAll: async (payload) => {
      const results = await app.bus.callAll('echo', payload);
      return results.map((r) => {
        if (r.status === 'rejected') throw r.error;
        return r.value;
      });
    },
    run: (worker, job) => app.bus.call(worker, 'run', job, { timeoutMs: JOB_TIMEOUT_MS }),
    publish: (tick) => app.bus.publish('tick', tick),
    failed,
    close: () => app.close({ timeoutMs: 5_000 }),
  };
}

/** A clusterbus worker: `connect`, then `echo` and `run` handlers and a `tick` subscriber. */
export async function clusterbusWorker(): Promise<void> {
  const bus = await connect(contract);
  const events = new EventCounter();
  const store = counterStore(bus);
  const api: WorkerApi = {
    echoVia: (target, payload) => bus.call(target, 'echo', payload),
    increment: store === undefined ? undefined : (key) => store.increment(key, 1),
    incrementMissing: 'store not available (this clusterbus has no bus.store)',
  };
  bus.handle('echo', (payload) => payload);
  bus.handle('echoStr', (payload) => payload);
  bus.handle('run', (job) => runJob(job, api, events));
  bus.subscribe('tick', (tick) => events.receive(tick));
}
