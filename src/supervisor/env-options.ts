/**
 * `startCluster`'s options from outside the code: `--workers N` on the primary's command line
 * (`node:util` `parseArgs`) and the environment variables of {@link ENVIRONMENT_VARIABLES}, each
 * read with a zod `z.coerce` schema. Precedence: code, then flag, then environment, then default.
 * Only the values that apply are read: one the code sets is ignored, even if malformed, and so are
 * the management API's host and token while no port is given, and the health variables with
 * `health: false`. `readEnv: false` reads nothing.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { Contract } from '../contract.js';
import { BusError } from '../errors.js';
import { describeValue } from '../util/describe.js';
import { MAX_TIMER_MS } from '../util/duration.js';
import type { StartClusterOptions } from './options.js';

/** Where the options are read from: the environment and the primary's own arguments. */
export interface EnvironmentSource {
  /** The variables. @default process.env */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The primary's arguments, without node and the script. @default process.argv.slice(2) */
  readonly argv: readonly string[];
}

/** Each variable, the option it sets, and what it must be. */
export const ENVIRONMENT_VARIABLES = {
  CLUSTER_WORKERS: 'workers',
  CLUSTER_MIN_WORKERS: 'minWorkers',
  CLUSTER_MAX_WORKERS: 'maxWorkers',
  HEALTH_CHECK_INTERVAL: 'health.intervalMs',
  WORKER_RESTART_DELAY: 'restartBackoffMs',
  GRACEFUL_SHUTDOWN_TIMEOUT: 'drainTimeoutMs',
  WORKER_MEMORY_LIMIT: 'health.maxMemoryBytes',
  CLUSTER_API_PORT: 'management.port',
  CLUSTER_API_HOST: 'management.host',
  CLUSTER_API_TOKEN: 'management.token',
  LOG_CLUSTER_STATS: 'logClusterStats',
} as const;

/** A variable's name. */
export type EnvironmentVariable = keyof typeof ENVIRONMENT_VARIABLES;

/** Text that is not blank, then coerced. */
const text = z.string().trim().min(1);
const count = text.pipe(z.coerce.number<string>().int().min(1).max(Number.MAX_SAFE_INTEGER));
const durationMs = text.pipe(z.coerce.number<string>().int().min(1).max(MAX_TIMER_MS));

/** What each value must be: its schema and the words of the refusal. */
const RULES = {
  count: { schema: count, expected: 'an integer >= 1' },
  durationMs: {
    schema: durationMs,
    expected: `an integer number of ms >= 1 and <= ${MAX_TIMER_MS}`,
  },
  bytes: { schema: count, expected: 'an integer number of bytes >= 1' },
  port: {
    schema: text.pipe(z.coerce.number<string>().int().min(0).max(65_535)),
    expected: 'a TCP port, an integer 0..65535',
  },
  host: { schema: text, expected: 'a host name or address' },
  token: { schema: z.string().min(1), expected: 'a token that is not empty' },
  stats: {
    schema: z.union([z.enum(['true', 'false']).transform((v) => v === 'true'), durationMs]),
    expected: `true, false or an interval: an integer number of ms >= 1 and <= ${MAX_TIMER_MS}`,
  },
} as const;

type Rule = (typeof RULES)[keyof typeof RULES];

/** Parses `raw`, read from `where` (a variable or a flag), or throws `INVALID_ARGUMENT`. */
function parse<R extends Rule>(rule: R, raw: unknown, where: string): z.output<R['schema']> {
  const result = rule.schema.safeParse(raw);
  if (result.success) return result.data as z.output<R['schema']>;
  const got = raw === true ? 'no value' : describeValue(raw);
  throw new BusError(
    'INVALID_ARGUMENT',
    `startCluster: ${where} must be ${rule.expected}, got ${got}`,
    { data: { variable: where, value: raw === true ? null : raw } },
  );
}

/**
 * The `--workers` flag of `argv` (`--workers 8`, `--workers=8`; the last one wins): its text,
 * `true` when it has no value, undefined when absent. Other arguments are left alone.
 */
export function workersFlag(argv: readonly string[]): string | true | undefined {
  const { values } = parseArgs({
    args: [...argv],
    strict: false,
    allowPositionals: true,
    options: { workers: { type: 'string' } },
  });
  const value = values.workers;
  return typeof value === 'string' || value === true ? value : undefined;
}

/**
 * @internal `options` with what the code left unset taken from `--workers` and the environment
 * (see the module's doc); `options` itself when `readEnv` is false. Never mutates `options`.
 *
 * @throws {@link BusError} `INVALID_ARGUMENT` for a value that applies and is malformed: the
 *   message names the variable (or flag) and the value it got; `data` is `{ variable, value }`.
 *   Also for a `readEnv` that is not a boolean.
 */
export function withEnvironment<C extends Contract>(
  options: StartClusterOptions<C>,
  source: EnvironmentSource = { env: process.env, argv: process.argv.slice(2) },
): StartClusterOptions<C> {
  if (typeof options !== 'object' || options === null || options.readEnv === false) return options;
  if (options.readEnv !== undefined && options.readEnv !== true) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: readEnv must be true or false, got ${describeValue(options.readEnv)}`,
    );
  }
  const env = source.env;
  const out: Record<string, unknown> = { ...options };
  /** Variable `name` parsed with `rule`, when it is set and the code left `current` unset. */
  const read = <R extends Rule>(current: unknown, name: EnvironmentVariable, rule: R) =>
    current !== undefined || env[name] === undefined ? undefined : parse(rule, env[name], name);
  const set = (key: string, value: unknown) => {
    if (value !== undefined) out[key] = value;
  };

  if (options.workers === undefined) {
    const flag = workersFlag(source.argv);
    set(
      'workers',
      flag !== undefined
        ? parse(RULES.count, flag, '--workers')
        : read(undefined, 'CLUSTER_WORKERS', RULES.count),
    );
  }
  set('minWorkers', read(options.minWorkers, 'CLUSTER_MIN_WORKERS', RULES.count));
  set('maxWorkers', read(options.maxWorkers, 'CLUSTER_MAX_WORKERS', RULES.count));
  set('restartBackoffMs', read(options.restartBackoffMs, 'WORKER_RESTART_DELAY', RULES.durationMs));
  set(
    'drainTimeoutMs',
    read(options.drainTimeoutMs, 'GRACEFUL_SHUTDOWN_TIMEOUT', RULES.durationMs),
  );
  set('logClusterStats', read(options.logClusterStats, 'LOG_CLUSTER_STATS', RULES.stats));

  // A value of the wrong type is left for resolveOptions to refuse, never covered up.
  const mergeable = (value: unknown) =>
    value === undefined || (typeof value === 'object' && value !== null && !Array.isArray(value));
  if (mergeable(options.health)) {
    const health = (options.health || {}) as Exclude<typeof options.health, false | undefined>;
    const intervalMs = read(health.intervalMs, 'HEALTH_CHECK_INTERVAL', RULES.durationMs);
    const maxMemoryBytes = read(health.maxMemoryBytes, 'WORKER_MEMORY_LIMIT', RULES.bytes);
    if (intervalMs !== undefined || maxMemoryBytes !== undefined) {
      out.health = {
        ...health,
        ...(intervalMs !== undefined ? { intervalMs } : {}),
        ...(maxMemoryBytes !== undefined ? { maxMemoryBytes } : {}),
      };
    }
  }

  if (mergeable(options.management)) {
    const management = (options.management || {}) as Exclude<
      typeof options.management,
      false | undefined
    >;
    const port = management.port ?? read(undefined, 'CLUSTER_API_PORT', RULES.port);
    // Host and token apply only to a management API that is on (it has a port).
    if (port !== undefined) {
      const host = read(management.host, 'CLUSTER_API_HOST', RULES.host);
      const token = read(management.token, 'CLUSTER_API_TOKEN', RULES.token);
      out.management = {
        ...management,
        port,
        ...(host !== undefined ? { host } : {}),
        ...(token !== undefined ? { token } : {}),
      };
    }
  }
  return out as unknown as StartClusterOptions<C>;
}
