/**
 * Shared helpers of the integration suite: start the fixture cluster, wait on events and on
 * fixture state with deadlines, and check that nothing (process or pending call) is left behind.
 */
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import {
  type ClusterApp,
  type ClusterEvents,
  type StartClusterOptions,
  startCluster,
} from '../../src/index.js';
import { forkedPids, isAlive, rejection, until } from './fixtures/common.js';
import { contract } from './fixtures/contract.js';

export type FixtureContract = typeof contract;
export type App = ClusterApp<FixtureContract>;

/** The fixture worker that handles every method of the fixture contract. */
export const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));
/** The library's source directory, to tell its stack frames from the caller's. */
const SRC_DIR = fileURLToPath(new URL('../../src/', import.meta.url));
/** A fixture worker that exits with code 1 before connecting. */
export const CRASHES = fileURLToPath(new URL('./fixtures/crashes.ts', import.meta.url));
/** A fixture worker that never calls connect(). */
export const NEVER_CONNECTS = fileURLToPath(
  new URL('./fixtures/never-connects.ts', import.meta.url),
);

export { forkedPids, isAlive, rejection, until };

/** Starts the fixture cluster: 2 workers running fixtures/worker.ts under tsx. */
export function start(options: Partial<StartClusterOptions<FixtureContract>> = {}): Promise<App> {
  return startCluster({
    contract,
    workers: 2,
    exec: WORKER,
    execArgv: ['--import', 'tsx'],
    ...options,
  });
}

/** Asserts that no worker forked by this file is still alive, and that cluster forgot them all. */
export function expectNoProcessLeft(): void {
  expect(forkedPids().filter(isAlive)).toEqual([]);
  expect(Object.keys(cluster.workers ?? {})).toEqual([]);
}

/**
 * Closes `app` and checks the leak invariants: nothing pending on the primary's bus, every worker
 * ever forked by this file dead.
 */
export async function stop(app: App | undefined): Promise<void> {
  if (app === undefined) return;
  await app.close();
  expect(app.bus.pendingCount).toBe(0);
  expectNoProcessLeft();
}

/** The ids of the live workers, ascending. */
export function workerIds(app: App): number[] {
  return app
    .workers()
    .map((w) => w.id)
    .sort((a, b) => a - b);
}

/** The pid of live worker `id`. */
export function pidOf(app: App, id: number): number {
  const pid = app.workers().find((w) => w.id === id)?.pid;
  if (pid === undefined) throw new Error(`worker ${id} is not live`);
  return pid;
}

/** Rejects if `promise` has not settled within `ms`; otherwise settles as it does. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** The app events that carry one payload (all but `close`). */
type PayloadEvent = Exclude<keyof ClusterEvents, 'close'>;
type Payload<E extends PayloadEvent> = Parameters<ClusterEvents[E]>[0];

/**
 * Resolves with the first `event` of `app` whose payload `match` accepts. Register it before
 * causing the event. Fails after `ms`.
 */
export function nextEvent<E extends PayloadEvent>(
  app: App,
  event: E,
  match: (payload: Payload<E>) => boolean = () => true,
  ms = 15_000,
): Promise<Payload<E>> {
  return new Promise<Payload<E>>((resolve, reject) => {
    const listener = (payload: Payload<E>) => {
      if (!match(payload)) return;
      clearTimeout(timer);
      app.off(event, listener);
      resolve(payload);
    };
    const timer = setTimeout(() => {
      app.off(event, listener);
      reject(new Error(`no matching '${event}' event within ${ms} ms`));
    }, ms);
    app.on(event, listener);
  });
}

/** Records every payload of `event` on `app`, from now on. */
export function record<E extends PayloadEvent>(app: App, event: E): Payload<E>[] {
  const seen: Payload<E>[] = [];
  app.on(event, (payload: Payload<E>) => {
    seen.push(payload);
  });
  return seen;
}

/**
 * The first line of `stack` that is a frame (`    at ...`): after `withSite`, the line that
 * issued the call.
 */
export function topFrame(stack: string | undefined): string {
  return stack?.split('\n').find((line) => line.trimStart().startsWith('at ')) ?? '';
}

/** The line of the code that calls `lineHere()`, as stacks number it. */
export function lineHere(): number {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, lineHere);
  const match = /:(\d+):\d+\)?$/m.exec(topFrame(holder.stack));
  if (match === null) throw new Error(`no line in ${holder.stack}`);
  return Number(match[1]);
}

/**
 * Asserts that the first frame of `error.stack` outside the library's `src/` (and Node's
 * internals) is in test file `file`, between lines `from` and `to`: the rejection points at the
 * line that issued the call.
 */
export function expectStackAt(error: unknown, file: string, from: number, to: number): void {
  const stack = (error as Error).stack ?? '';
  const frames = stack.split('\n').filter((line) => line.trimStart().startsWith('at '));
  // Node's own frames (the microtask queue that resumed the await) are nobody's line.
  const first = frames.find((line) => !line.includes(SRC_DIR) && !line.includes('(node:')) ?? '';
  expect(first, stack).toContain(file);
  const match = /:(\d+):\d+\)?$/.exec(first);
  const line = Number(match?.[1]);
  expect(line, stack).toBeGreaterThanOrEqual(from);
  expect(line, stack).toBeLessThanOrEqual(to);
}
