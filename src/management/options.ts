/**
 * The checks and defaults of the management API's options.
 *
 * @module
 */
import { BusError } from '../errors.js';
import { isLoopback } from '../supervisor/ops-options.js';
import { checkCount } from '../util/count.js';
import { describeValue } from '../util/describe.js';
import { checkDurationMs } from '../util/duration.js';
import type { ManagementOptions } from './types.js';

/** Default of `maxBodyBytes`. */
export const DEFAULT_MAX_BODY_BYTES = 16_384;
/** Default of `requestTimeoutMs`. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Default of `maxConcurrentRequests`. */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 8;

/** @internal {@link ManagementOptions} checked, with their defaults. */
export interface ResolvedManagementOptions {
  readonly port: number;
  readonly host: string;
  readonly token: string | undefined;
  readonly maxBodyBytes: number;
  readonly requestTimeoutMs: number;
  readonly maxConcurrentRequests: number;
}

/** Every key of {@link ManagementOptions}. */
const KEYS = [
  'port',
  'host',
  'token',
  'maxBodyBytes',
  'requestTimeoutMs',
  'maxConcurrentRequests',
] as const satisfies readonly (keyof ManagementOptions)[];

/**
 * @internal Checks the `management` option; undefined when it is absent (the API is off).
 * @throws {@link BusError} `INVALID_ARGUMENT` for an unknown key, a bad value, or a non-loopback
 *   host without a token.
 */
export function resolveManagementOptions(
  options: ManagementOptions | undefined,
): ResolvedManagementOptions | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: management must be an object { port, host?, token? }, got ${describeValue(options)}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!(KEYS as readonly string[]).includes(key)) {
      throw new BusError(
        'INVALID_ARGUMENT',
        `startCluster: unknown option management.${key} (known: ${KEYS.join(', ')})`,
      );
    }
  }
  const port = checkCount(options.port, 'startCluster: management.port', 0, 65_535);
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.length === 0) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: management.host must be a non-empty string, got ${describeValue(host)}`,
    );
  }
  const token = options.token;
  if (token !== undefined && (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token))) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: management.token must be a non-empty string of visible ASCII characters without spaces, got ${typeof token === 'string' ? 'a string that is not' : describeValue(token)}`,
    );
  }
  if (token === undefined && !isLoopback(host)) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: the management API would listen on ${host}, which is not a loopback address, without a token: set management.token (or CLUSTER_API_TOKEN)`,
    );
  }
  return {
    port,
    host,
    token,
    maxBodyBytes: checkCount(
      options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      'startCluster: management.maxBodyBytes',
      0,
    ),
    requestTimeoutMs: checkDurationMs(
      options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      'management.requestTimeoutMs',
    ),
    maxConcurrentRequests: checkCount(
      options.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS,
      'startCluster: management.maxConcurrentRequests',
      1,
    ),
  };
}
