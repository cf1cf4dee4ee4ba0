/**
 * The jobs extension on both sides: `bus.singleton(name, job, options)` and
 * `bus.schedule(name, cron, tick, options)`. It has no protocol of its own: a singleton is a
 * client of the state extension's locks (the primary's lock table), under lock names of the
 * reserved namespace (`$singleton.<name>`) that `bus.lock` refuses. Its close (when the bus
 * closes) stops every singleton of the bus.
 *
 * @module
 */
import type { Extension } from '../core/extension.js';
import { BusError } from '../errors.js';
import { type SystemLock, systemLock } from '../state/extension.js';
import { checkDurationMs } from '../util/duration.js';
import { loadCron, scheduleJob } from './schedule.js';
import { Singleton, type SingletonSettings } from './singleton.js';
import type {
  JobsApi,
  ScheduleOptions,
  SingletonHandle,
  SingletonJob,
  SingletonOptions,
} from './types.js';

/** Default `ttlMs` of a singleton's lease, in ms. */
export const DEFAULT_SINGLETON_TTL_MS = 10_000;
/** Default `restartDelayMs` of a singleton, in ms. */
export const DEFAULT_RESTART_DELAY_MS = 1_000;
/** Default `retryMs` of a singleton, in ms. */
export const DEFAULT_RETRY_MS = 1_000;
/** The longest singleton name, in characters (its lock name must fit in 1,024). */
export const MAX_SINGLETON_NAME_LENGTH = 1_000;

/**
 * The jobs extension. `lock` gives the bus's lock for reserved names (looked up when a singleton
 * asks: the primary installs its state extension after the snapshot is loaded).
 */
export function jobsExtension(lock: () => SystemLock): Extension<JobsApi> {
  return {
    name: 'jobs',
    install(ctx) {
      const running = new Map<string, Singleton>();
      let closed = false;
      void ctx.closed.then(() => {
        closed = true;
      });
      const host = {
        lock: (name: string, options: { ttlMs: number; waitMs: number; signal: AbortSignal }) =>
          lock()(name, options),
        report: (error: BusError) => ctx.report(error),
      };
      const start = (name: string, job: SingletonJob, options: SingletonOptions) => {
        if (closed) throw new BusError('CLOSED', `singleton '${name}': the bus is closed`);
        if (running.has(name)) {
          throw new BusError(
            'INVALID_ARGUMENT',
            `singleton '${name}' already runs on this bus; stop() it first`,
          );
        }
        const singleton = new Singleton(name, job, settings(options), host);
        running.set(name, singleton);
        void singleton.done.then(() => {
          if (running.get(name) === singleton) running.delete(name);
        });
        return singleton;
      };
      const api: JobsApi = {
        singleton(name, job, options = {}): SingletonHandle {
          checkName(name, 'singleton');
          if (typeof job !== 'function') {
            throw new BusError(
              'INVALID_ARGUMENT',
              `singleton '${name}': the job must be a function`,
            );
          }
          return start(name, job, options);
        },
        async schedule(name, cron, tick, options: ScheduleOptions = {}) {
          checkName(name, 'schedule');
          settings(options);
          const Cron = await loadCron();
          return start(name, scheduleJob(Cron, name, cron, tick, options, host.report), options);
        },
      };
      return {
        api,
        close() {
          closed = true;
          const why = new BusError('CLOSED', 'the bus closed');
          for (const singleton of running.values()) void singleton.stop(why);
        },
      };
    },
  };
}

function checkName(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_SINGLETON_NAME_LENGTH) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `${what}: the name must be a non-empty string of at most ${MAX_SINGLETON_NAME_LENGTH} characters`,
    );
  }
}

/** Checks `options` and fills in the defaults. @throws `INVALID_ARGUMENT` */
function settings(options: SingletonOptions): SingletonSettings {
  if (typeof options !== 'object' || options === null) {
    throw new BusError('INVALID_ARGUMENT', 'singleton: options must be an object');
  }
  const ttlMs = checkDurationMs(options.ttlMs ?? DEFAULT_SINGLETON_TTL_MS, 'singleton: ttlMs');
  const renewMs = checkDurationMs(options.renewMs ?? ttlMs / 3, 'singleton: renewMs');
  if (renewMs >= ttlMs) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `singleton: renewMs (${renewMs}) must be less than ttlMs (${ttlMs}), or the lease ends before it is renewed`,
    );
  }
  const restartDelayMs = checkDurationMs(
    options.restartDelayMs ?? DEFAULT_RESTART_DELAY_MS,
    'singleton: restartDelayMs',
    { zero: true },
  );
  const retryMs = checkDurationMs(options.retryMs ?? DEFAULT_RETRY_MS, 'singleton: retryMs');
  return { ttlMs, renewMs, restartDelayMs, retryMs };
}

/** What {@link withJobs} needs of a bus. */
export interface JobsHolder {
  install<Api>(extension: Extension<Api>): Api;
  extensionApi(name: string): unknown;
  readonly self: 'primary' | number;
}

/**
 * Installs the jobs extension on `bus` and exposes its API there (`singleton`, `schedule`).
 * Singletons take their locks from the bus's state extension, looked up when they ask; without
 * one, asking fails with `NO_HANDLER` (reported, retried every `retryMs`).
 */
export function withJobs<B extends JobsHolder>(bus: B): B & JobsApi {
  const lock = (): SystemLock => {
    const state = bus.extensionApi('state') as { [systemLock]?: SystemLock } | undefined;
    const acquire = state?.[systemLock];
    if (acquire !== undefined) return acquire;
    const who = bus.self === 'primary' ? 'the primary' : `worker ${bus.self}`;
    return () => Promise.reject(new BusError('NO_HANDLER', `${who} has no state extension`));
  };
  const api = bus.install(jobsExtension(lock));
  return Object.defineProperties(bus, {
    singleton: { value: api.singleton },
    schedule: { value: api.schedule },
  }) as B & JobsApi;
}
