/**
 * The options of {@link natsMesh}, their defaults and their checks.
 *
 * @module
 */
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { BusError } from '../errors.js';

/** How compare-and-set writes (ifRevision, increment, locks) are made safe on the server. */
export type CasMode = 'auto' | 'stream' | 'key';

/** Options of {@link natsMesh}. */
export interface NatsMeshOptions {
  /** The NATS server URL, or several (as nats.js's `servers`). */
  readonly servers: string | readonly string[];
  /**
   * This node's name, unique in the mesh: letters, digits, `_` and `-` (it is a NATS subject
   * token). `bus.node` in the primary and its workers; the `node` of `{ node, worker }` targets.
   */
  readonly node: string;
  /**
   * The first token of every subject and the start of every KV bucket name, so that two apps on
   * one NATS do not see each other: letters, digits, `_` and `-`.
   * @default 'clusterbus'
   */
  readonly prefix?: string;
  /**
   * Passed through to nats.js's `connect()` (credentials: `user`/`pass`, `token`,
   * `authenticator` such as `credsAuthenticator(...)`; `tls`; `name`; reconnect settings). The
   * mesh sets `servers`, and unless given here: `maxReconnectAttempts: -1` (reconnect forever),
   * `name: '<prefix>:<node>'`.
   */
  readonly connection?: Omit<NodeConnectionOptions, 'servers'>;
  /**
   * Each primary publishes its presence (its name, its workers, its contract's hash) this often,
   * in ms.
   * @default 1000
   */
  readonly heartbeatMs?: number;
  /**
   * A node not heard for this many ms is gone: calls in flight to it reject with
   * `TARGET_EXITED`, new ones with `NO_TARGET`, until it is heard again. At least twice
   * `heartbeatMs`.
   * @default 3000
   */
  readonly goneAfterMs?: number;
  /**
   * `'any'` calls go to a worker of this node when one handles the method, and to the NATS
   * queue group of the whole mesh only otherwise. With false, every `'any'` call goes to the
   * queue group (this node's workers included, as NATS picks).
   * @default true
   */
  readonly localFirst?: boolean;
  /**
   * JetStream replicas of the KV buckets (stores, locks, config): 1 to 5.
   * @default 3 when the server is part of a cluster, else 1
   */
  readonly replicas?: number;
  /**
   * How compare-and-set writes are made: `'stream'` expects the bucket's last sequence
   * (stream-wide; safe on every server version, writes to one bucket are serialized);
   * `'key'` expects the key's last revision (KV's own `update`/`create`; safe on nats-server
   * 2.10.19 and later, see docs/nats.md); `'auto'` picks `'key'` from 2.10.19 on, else `'stream'`.
   * @default 'auto'
   */
  readonly casMode?: CasMode;
  /**
   * How long the mesh waits for JetStream to be ready (a cluster electing its leaders) when it
   * starts, in ms.
   * @default 20_000
   */
  readonly startTimeoutMs?: number;
}

/** {@link NatsMeshOptions} with every default applied. */
export interface ResolvedMeshOptions {
  readonly servers: string[];
  readonly node: string;
  readonly prefix: string;
  readonly connection: Omit<NodeConnectionOptions, 'servers'>;
  readonly heartbeatMs: number;
  readonly goneAfterMs: number;
  readonly localFirst: boolean;
  readonly replicas: number | undefined;
  readonly casMode: CasMode;
  readonly startTimeoutMs: number;
}

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

function positive(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new BusError('INVALID_ARGUMENT', `natsMesh: ${name} must be a positive number of ms`);
  }
  return value;
}

/** Checks and defaults the options. @throws BusError `INVALID_ARGUMENT`. */
export function resolveMeshOptions(options: NatsMeshOptions): ResolvedMeshOptions {
  if (typeof options !== 'object' || options === null) {
    throw new BusError('INVALID_ARGUMENT', 'natsMesh: options must be an object');
  }
  const servers = typeof options.servers === 'string' ? [options.servers] : options.servers;
  if (
    !Array.isArray(servers) ||
    servers.length === 0 ||
    !servers.every((s) => typeof s === 'string' && s.length > 0)
  ) {
    throw new BusError('INVALID_ARGUMENT', 'natsMesh: servers must be a URL or a list of URLs');
  }
  if (typeof options.node !== 'string' || !TOKEN.test(options.node)) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `natsMesh: node must be 1-64 letters, digits, '_' or '-', got ${JSON.stringify(options.node)}`,
    );
  }
  const prefix = options.prefix ?? 'clusterbus';
  if (typeof prefix !== 'string' || !TOKEN.test(prefix)) {
    throw new BusError(
      'INVALID_ARGUMENT',
      "natsMesh: prefix must be 1-64 letters, digits, '_' or '-'",
    );
  }
  const heartbeatMs = positive(options.heartbeatMs, 'heartbeatMs', 1_000);
  const goneAfterMs = positive(options.goneAfterMs, 'goneAfterMs', 3_000);
  if (goneAfterMs < 2 * heartbeatMs) {
    throw new BusError(
      'INVALID_ARGUMENT',
      'natsMesh: goneAfterMs must be at least 2 × heartbeatMs',
    );
  }
  const replicas = options.replicas;
  if (replicas !== undefined && !(Number.isInteger(replicas) && replicas >= 1 && replicas <= 5)) {
    throw new BusError('INVALID_ARGUMENT', 'natsMesh: replicas must be an integer from 1 to 5');
  }
  const casMode = options.casMode ?? 'auto';
  if (casMode !== 'auto' && casMode !== 'stream' && casMode !== 'key') {
    throw new BusError('INVALID_ARGUMENT', "natsMesh: casMode must be 'auto', 'stream' or 'key'");
  }
  return {
    servers: [...servers],
    node: options.node,
    prefix,
    connection: options.connection ?? {},
    heartbeatMs,
    goneAfterMs,
    localFirst: options.localFirst !== false,
    replicas,
    casMode,
    startTimeoutMs: positive(options.startTimeoutMs, 'startTimeoutMs', 20_000),
  };
}

/** Whether server version `version` ("2.10.19") is at least `major.minor.patch`. */
export function atLeast(version: string, major: number, minor: number, patch: number): boolean {
  const [a = 0, b = 0, c = 0] = version.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  return a !== major ? a > major : b !== minor ? b > minor : c >= patch;
}
