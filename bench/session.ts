/**
 * What the primary sees of an implementation: a {@link Session} over a fresh cluster, and the
 * forking helpers of the hand-written baselines.
 *
 * @module
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Echo, Job, Payload, Report, Tick } from './schemas.js';

/** Every implementation, in the order each round runs them. */
export const IMPLS = [
  'raw-json',
  'raw-batched',
  'birpc',
  'birpc+zod',
  'clusterbus',
  'redis',
] as const;
export type ImplName = (typeof IMPLS)[number];

/** The environment variable that tells a forked worker which implementation it runs. */
export const IMPL_ENV = 'BENCH_IMPL';

/** How long a fresh cluster may take to start (16 workers loading tsx on a busy machine). */
export const START_TIMEOUT_MS = 120_000;

/** The script every worker runs: the bench's entry, which branches on `cluster.isPrimary`. */
export const ENTRY = fileURLToPath(new URL('./run.ts', import.meta.url));

/** One fresh cluster running one implementation. */
export interface Session {
  /** The workers' ids (Node's `worker.id`), in fork order. */
  readonly workers: readonly number[];
  /** Primary -> worker: calls `echo` (or `echoStr` for a string payload); resolves with the reply, unchecked. */
  echo(worker: number, payload: Echo): Promise<unknown>;
  /**
   * Primary -> every worker: calls `echo` on each and resolves once all answered, with the
   * replies in worker order (unchecked); absent where the implementation has no fan-out call.
   */
  readonly callAll?: ((payload: Payload) => Promise<unknown[]>) | undefined;
  /** Hands a job to a worker; resolves with its report. */
  run(worker: number, job: Job): Promise<Report>;
  /** Sends one broadcast event to every worker (raw-batched: 64 events per send). */
  publish(tick: Tick): void;
  /** Rejects if a worker exits before {@link close}. */
  readonly failed: Promise<never>;
  /** Ends every worker; resolves once they have exited. */
  close(): Promise<void>;
}

/** Starts a fresh cluster of `workers` workers running one implementation. */
export type StartSession = (workers: number) => Promise<Session>;

/** Races `work` against the session's failure and a deadline. */
export async function guard<T>(
  session: { readonly failed: Promise<never> },
  work: Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no result within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([work, session.failed, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Workers forked by hand (the baselines), with crash detection and a clean stop. */
export class ForkedWorkers {
  readonly list: readonly Worker[];
  readonly failed: Promise<never>;
  private stopping = false;

  private constructor(count: number, impl: ImplName) {
    cluster.setupPrimary({ exec: ENTRY, execArgv: process.execArgv, args: [] });
    this.list = Array.from({ length: count }, () => cluster.fork({ [IMPL_ENV]: impl }));
    this.failed = new Promise<never>((_, reject) => {
      for (const w of this.list) {
        w.on('exit', (code, signal) => {
          if (!this.stopping) {
            reject(
              new Error(
                `worker ${w.id} exited unexpectedly (code ${code}, signal ${signal}); see its stderr above`,
              ),
            );
          }
        });
      }
    });
    this.failed.catch(() => {});
  }

  /** Forks `count` workers and resolves once each has sent `'ready'`. */
  static async start(
    count: number,
    impl: ImplName,
    timeoutMs = START_TIMEOUT_MS,
  ): Promise<ForkedWorkers> {
    const forked = new ForkedWorkers(count, impl);
    const ready = forked.list.map(
      (w) =>
        new Promise<void>((resolve) => {
          const onMessage = (m: unknown) => {
            if (m !== 'ready') return;
            w.off('message', onMessage);
            resolve();
          };
          w.on('message', onMessage);
        }),
    );
    try {
      await guard(forked, Promise.all(ready), timeoutMs, `starting ${count} ${impl} workers`);
    } catch (error) {
      await forked.stop();
      throw error;
    }
    return forked;
  }

  /** Disconnects every worker, kills those still alive after `timeoutMs`, awaits their exits. */
  async stop(timeoutMs = 5_000): Promise<void> {
    this.stopping = true;
    await stopWorkers(this.list, timeoutMs);
  }
}

/** Disconnects workers, SIGKILLs those still alive after `timeoutMs`, resolves when all exited. */
export async function stopWorkers(workers: readonly Worker[], timeoutMs: number): Promise<void> {
  const exits = workers.map(
    (w) =>
      new Promise<void>((resolve) => {
        if (w.isDead()) resolve();
        else w.once('exit', () => resolve());
      }),
  );
  for (const w of workers) if (w.isConnected()) w.disconnect();
  const timer = setTimeout(() => {
    for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
  }, timeoutMs);
  await Promise.all(exits);
  clearTimeout(timer);
}
