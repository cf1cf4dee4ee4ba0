/**
 * What the cluster app shows of its slots: the live workers (`app.workers()`) and their health
 * (`app.health()`), read off the slots and the health monitor.
 *
 * @module
 */
import type { HealthMonitor } from '../health/extension.js';
import type { ClusterHealth } from '../health/types.js';
import type { WorkerInfo } from './events.js';
import type { Slots } from './slots.js';

/** The live workers, ascending by slot, then by id. */
export function workersView(slots: Slots, connected: ReadonlySet<number>): WorkerInfo[] {
  return [...slots.records.values()]
    .sort((a, b) => a.slot.index - b.slot.index || a.id - b.id)
    .map((r) => ({
      id: r.id,
      slot: r.slot.index,
      pid: r.worker.process.pid,
      connected: connected.has(r.id),
      state: r.state,
    }));
}

/** The latest health report of every live worker, with the monitor's view of it. */
export function healthView(slots: Slots, monitor: HealthMonitor | undefined): ClusterHealth {
  return {
    at: Date.now(),
    monitoring: monitor?.running === true,
    workers: [...slots.records.values()]
      .sort((a, b) => a.slot.index - b.slot.index || a.id - b.id)
      .map((r) => {
        const view = monitor?.view(r.id);
        return {
          workerId: r.id,
          slot: r.slot.index,
          pid: r.worker.process.pid,
          state: r.state,
          misses: view?.misses ?? 0,
          overMemory: view?.overMemory ?? 0,
          lastSeenAt: view?.lastSeenAt,
          report: view?.report,
        };
      }),
  };
}
