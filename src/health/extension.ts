/**
 * The health extension: the hub pings every ready worker on an interval and judges the answers;
 * a worker answers each ping with a report of its own measures and the app's checks. Two one-way
 * verbs, no calls: `$health.ping` (hub -> worker) and `$health.report` (worker -> hub).
 *
 * @module
 */
import { type Extension, HUB_ID } from '../core/extension.js';
import { BusError } from '../errors.js';
import { HealthMonitor, type MonitorHooks, type ResolvedHealthOptions } from './hub.js';
import { HealthVerb, PingSchema } from './types.js';
import { HealthChecks, type HealthSource } from './worker.js';

export type { HealthMonitor } from './hub.js';
export type { HealthChecks } from './worker.js';

/** The extension's name: its system names are `$health.<verb>`. */
const NAME = 'health';

/**
 * @internal The hub's side: the {@link HealthMonitor} (`watch`, `unwatch`, `forget`, `view`,
 * `stop`), stopped when the bus closes.
 */
export function healthHub(
  options: ResolvedHealthOptions,
  hooks: MonitorHooks,
): Extension<HealthMonitor> {
  return {
    name: NAME,
    install(ctx) {
      const monitor = new HealthMonitor(ctx, options, hooks);
      return { api: monitor, close: () => monitor.stop() };
    },
  };
}

/**
 * @internal The worker's side: `bus.health` (`addCheck`), answering each `$health.ping` with a
 * `$health.report`. The event loop is measured from the first ping on (with `health: false`, a
 * worker runs no histogram timer) until the bus closes.
 */
export function healthWorker(source: HealthSource): Extension<HealthChecks> {
  return {
    name: NAME,
    install(ctx) {
      const health = new HealthChecks(source);
      const off = ctx.on(HealthVerb.ping, (payload) => {
        const ping = PingSchema.safeParse(payload);
        if (!ping.success) {
          ctx.report(new BusError('PROTOCOL', 'a malformed health ping from the primary'));
          return;
        }
        const { seq, checkTimeoutMs } = ping.data;
        health.start();
        health.report(checkTimeoutMs).then(
          (report) => ctx.send(HUB_ID, HealthVerb.report, { seq, report }),
          (error: unknown) =>
            ctx.report(
              new BusError('PROTOCOL', 'could not build a health report', { cause: error }),
            ),
        );
      });
      return {
        api: health,
        close: () => {
          off();
          health.stop();
        },
      };
    },
  };
}
