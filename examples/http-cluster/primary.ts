/**
 * The primary of the HTTP cluster: starts the workers with the initial config, holds the `hits`
 * store, answers `clusterInfo`, tells the workers who their peers are, and finds out which port
 * they share.
 */
import cluster, { type Address, type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import {
  type ClusterApp,
  type HealthOptions,
  type ManagementOptions,
  startCluster,
} from 'clusterbus';
import type { z } from 'zod';
import { type Config, contract } from './contract.js';

export interface HttpClusterOptions {
  /** How many workers. @default os.availableParallelism() */
  readonly workers?: number;
  /** The port every worker listens on; 0 lets the OS pick one, shared by all. @default 3000 */
  readonly port?: number;
  /** How long the workers have to connect and listen, in ms. @default 30_000 */
  readonly readyTimeoutMs?: number;
  /** The initial config. @default { greeting: 'hello' } */
  readonly config?: z.input<typeof Config>;
  /** The management API (off when omitted). */
  readonly management?: ManagementOptions;
  /** Health checks. @default the cluster's default */
  readonly health?: HealthOptions;
}

export interface HttpCluster {
  readonly app: ClusterApp<typeof contract>;
  /** The port the workers listen on. */
  readonly port: number;
}

/** The worker script: server.ts, which runs the worker side when `cluster.isPrimary` is false. */
const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url));

/**
 * Starts the cluster and resolves once every worker is connected and listening.
 */
export async function startHttpCluster(options: HttpClusterOptions = {}): Promise<HttpCluster> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  // Which port each worker listens on, from Node's own 'listening' event.
  const listening = new Map<number, number>();
  const onListening = (worker: Worker, address: Address) => listening.set(worker.id, address.port);
  cluster.on('listening', onListening);

  const app = await startCluster({
    contract,
    exec: SERVER,
    env: { PORT: String(options.port ?? 3000) },
    config: options.config ?? { greeting: 'hello' },
    readyTimeoutMs,
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
    ...(options.management !== undefined ? { management: options.management } : {}),
    ...(options.health !== undefined ? { health: options.health } : {}),
  });
  app.once('close', () => cluster.off('listening', onListening));

  const startedAt = Date.now();
  let restarts = 0;
  app.bus.handle('clusterInfo', () => ({
    pid: process.pid,
    workers: app.bus.connectedWorkers(),
    restarts,
    uptimeMs: Date.now() - startedAt,
  }));

  // Every worker keeps a list of its peers, the ready workers (a draining one is on its way out):
  // publish it whenever that set changes.
  const announce = () => {
    if (app.bus.isClosed) return;
    const workers = app
      .workers()
      .filter((w) => w.state === 'ready')
      .map((w) => w.id);
    app.bus.publish('cluster.members', { workers });
  };
  app.on('worker:ready', announce);
  app.on('worker:drain', announce);
  app.on('worker:exit', (event) => {
    if (event.replacedBy !== undefined) restarts++;
    announce();
  });
  announce();

  let crashLooping = false;
  app.once('worker:restart-limit', () => {
    crashLooping = true;
  });
  const allListening = () => {
    if (crashLooping) throw new Error('the workers keep exiting (is the port in use?)');
    const workers = app.workers();
    return workers.length > 0 && workers.every((w) => listening.has(w.id));
  };
  try {
    await waitFor(allListening, readyTimeoutMs, 'the workers to listen');
    return { app, port: listening.get(app.workers()[0]!.id)! };
  } catch (error) {
    await app.close();
    throw error;
  }
}

/** Resolves once `check()` is true, polling every 10 ms; rejects after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
