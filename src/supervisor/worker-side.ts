/**
 * Wires the worker's side of the supervision protocols onto its bus: `$config` (apply a config
 * update), `$drain` (drain and answer when done), `$health:ping` (answer with a report), and,
 * in a real cluster worker, leaving SIGINT, SIGTERM and the primary's other signals to it.
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

/** Signals a worker leaves to its primary in any case (a Ctrl-C reaches the whole group). */
const DEFERRED_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * @internal Makes this worker ignore SIGINT, SIGTERM and `primarySignals` (every signal its
 * clusterbus primary handles: by default also SIGUSR2, and SIGHUP with a config file) while its
 * bus is open. A signal sent to the whole process group (Ctrl-C, a group-wide SIGTERM, nodemon's
 * SIGUSR2) reaches the primary too, which drains or replaces the workers; a worker dying at once
 * would drop its in-flight requests and count as a crash. A worker whose primary dies still
 * exits (Node ends a worker whose IPC channel closes unexpectedly). Returns the remover.
 */
export function deferSignalsToPrimary(primarySignals: readonly NodeJS.Signals[] = []): () => void {
  const ignore = () => {};
  const signals = [...new Set<NodeJS.Signals>([...DEFERRED_SIGNALS, ...primarySignals])];
  const installed: NodeJS.Signals[] = [];
  for (const s of signals) {
    try {
      process.on(s, ignore);
      installed.push(s);
    } catch {
      // A signal this platform does not have: nothing to ignore.
    }
  }
  return () => {
    for (const s of installed) process.off(s, ignore);
  };
}
