/**
 * Wires the worker's side of the supervision protocols onto its bus: `$config` (apply a config
 * update), `$drain` (drain and answer when done), `$health:ping` (answer with a report), and,
 * in a real cluster worker, leaving SIGINT/SIGTERM to the primary.
 *
 * @module
 */
import type { WorkerBus } from '../bus/worker.js';
import { CONFIG_METHOD } from '../config/types.js';
import type { WorkerConfig } from '../config/worker.js';
import type { Contract } from '../contract.js';
import { BusError } from '../errors.js';
import { HealthTopic, PingSchema } from '../health/types.js';
import type { HealthChecks } from '../health/worker.js';
import { DRAIN_METHOD } from './drain.js';
import type { WorkerDrain } from './worker-drain.js';

/** The worker-side parts a bus owns. */
export interface WorkerParts {
  readonly config: WorkerConfig<Contract>;
  readonly health: HealthChecks;
  readonly drain: WorkerDrain;
  /** Reports a problem on the bus's `error` event. */
  readonly report: (error: BusError) => void;
}

/**
 * @internal Registers the system handlers of config, drain and health on `bus`. Returns the
 * function that undoes it (at close).
 */
export function attachWorkerProtocols(bus: WorkerBus<Contract>, parts: WorkerParts): () => void {
  const offs = [
    bus.systemHandle(CONFIG_METHOD, (input) => parts.config.apply(input)),
    bus.systemHandle(DRAIN_METHOD, async () => {
      await parts.drain.drain();
      return { drained: true };
    }),
    bus.systemSubscribe(HealthTopic.ping, (payload) => {
      const ping = PingSchema.safeParse(payload);
      if (!ping.success) {
        parts.report(new BusError('PROTOCOL', 'a malformed health ping from the primary'));
        return;
      }
      const { seq, checkTimeoutMs } = ping.data;
      // Measured from the first ping on: with `health: false`, a worker runs no histogram timer.
      parts.health.start();
      parts.health.report(checkTimeoutMs).then(
        (report) => bus.systemSend(HealthTopic.report, { seq, report }),
        (error: unknown) =>
          parts.report(
            new BusError('PROTOCOL', 'could not build a health report', { cause: error }),
          ),
      );
    }),
  ];
  return () => {
    parts.health.stop();
    for (const off of offs) off();
  };
}

const DEFERRED_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * @internal Makes this worker ignore SIGINT and SIGTERM while its bus is open: a Ctrl-C (sent to
 * the whole process group) or a group-wide SIGTERM reaches the primary too, which drains the
 * workers; a worker dying at once would drop its in-flight requests. A worker whose primary dies
 * still exits (Node ends a worker whose IPC channel closes unexpectedly). Returns the remover.
 */
export function deferSignalsToPrimary(): () => void {
  const ignore = () => {};
  for (const s of DEFERRED_SIGNALS) process.on(s, ignore);
  return () => {
    for (const s of DEFERRED_SIGNALS) process.off(s, ignore);
  };
}
