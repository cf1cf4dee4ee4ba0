/**
 * Both sides: a cron expression run as a singleton (`bus.schedule`). croner, an optional peer
 * dependency loaded when first needed, parses the expression and fires the ticks; the schedule
 * runs in the singleton's leader only, from the moment it leads until its `ctx.signal` aborts.
 *
 * @module
 */
import type { Cron as CronClass, CronOptions } from 'croner';
import { BusError, toBusError } from '../errors.js';
import type { ScheduleOptions, SingletonContext, SingletonJob, TickJob } from './types.js';

type CronConstructor = typeof CronClass;

let loading: Promise<CronConstructor> | undefined;

/**
 * croner's `Cron`, imported once.
 *
 * @throws never synchronously; rejects with {@link BusError} `NOT_INSTALLED` (`data.module`:
 *   `'croner'`) when croner is not installed.
 */
export function loadCron(): Promise<CronConstructor> {
  loading ??= import('croner').then(
    (m) => m.Cron,
    (error: unknown) => {
      loading = undefined;
      throw new BusError(
        'NOT_INSTALLED',
        "bus.schedule needs the optional peer dependency 'croner' (npm install croner), which could not be loaded",
        { cause: error, data: { module: 'croner' } },
      );
    },
  );
  return loading;
}

/** croner's options of a schedule: its time zone, no timer keeping the process alive. */
function cronOptions(options: ScheduleOptions, protect?: () => void): CronOptions {
  return {
    unref: true,
    ...(options.timezone !== undefined ? { timezone: options.timezone } : {}),
    ...(protect !== undefined ? { protect } : {}),
  };
}

/**
 * Parses `cron` with croner (without scheduling anything) and returns the singleton job that
 * runs its ticks.
 *
 * @throws {@link BusError} `INVALID_ARGUMENT` for an expression or a time zone croner refuses.
 */
export function scheduleJob(
  Cron: CronConstructor,
  name: string,
  cron: string,
  tick: TickJob,
  options: ScheduleOptions,
  report: (error: BusError) => void,
): SingletonJob {
  if (typeof cron !== 'string') {
    throw new BusError(
      'INVALID_ARGUMENT',
      `schedule '${name}': the cron expression must be a string`,
    );
  }
  if (typeof tick !== 'function') {
    throw new BusError('INVALID_ARGUMENT', `schedule '${name}': the tick must be a function`);
  }
  if (options.timezone !== undefined && typeof options.timezone !== 'string') {
    throw new BusError('INVALID_ARGUMENT', `schedule '${name}': timezone must be a string`);
  }
  try {
    const probe = new Cron(cron, { ...cronOptions(options), paused: true });
    const next = probe.nextRun();
    probe.stop();
    if (next === null) throw new Error('it is never due');
  } catch (error) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `schedule '${name}': croner refuses the expression '${cron}': ${toBusError(error, 'INVALID_ARGUMENT').message}`,
      { cause: error },
    );
  }
  return (ctx) => runSchedule(Cron, ctx, cron, tick, options, report);
}

/** Runs the ticks of `cron` until `ctx.signal` aborts, then waits for a running tick. */
async function runSchedule(
  Cron: CronConstructor,
  ctx: SingletonContext,
  cron: string,
  tick: TickJob,
  options: ScheduleOptions,
  report: (error: BusError) => void,
): Promise<void> {
  const { name, fencingToken, signal } = ctx;
  let running: Promise<void> | undefined;
  const skipped = (): void =>
    report(
      new BusError(
        'JOB_FAILED',
        `schedule '${name}': a tick was skipped, the previous one was still running`,
        { data: { singleton: name, fencingToken, skipped: true } },
      ),
    );
  // The time croner waits for: a tick fired late (a busy process) is still labelled with it.
  let due: Date | null = null;
  const job = new Cron(cron, cronOptions(options, skipped), async (self: CronClass) => {
    const scheduledAt = due ?? new Date();
    due = self.nextRun();
    // Its timer and the lease's end both overdue (a process that was paused): the lease first.
    if (signal.aborted) return;
    running = (async () => {
      try {
        await tick({ name, fencingToken, signal, scheduledAt });
      } catch (error) {
        if (signal.aborted) return;
        report(
          new BusError(
            'JOB_FAILED',
            `schedule '${name}' (lease ${fencingToken}): the tick due at ${scheduledAt.toISOString()} threw: ${toBusError(error, 'JOB_FAILED').message}`,
            { cause: error, data: { singleton: name, fencingToken } },
          ),
        );
      }
    })();
    await running;
  });
  due = job.nextRun();
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  job.stop();
  await running;
}
