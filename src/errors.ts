/**
 * One error class for everything the bus rejects with, its wire form, and the one function that
 * turns anything thrown into it.
 *
 * @module
 */

/**
 * Every code a {@link BusError} can carry.
 *
 * - `TIMEOUT`: no answer within `timeoutMs`.
 * - `ABORTED`: the caller's `AbortSignal` fired.
 * - `BAD_INPUT`: the input failed the method's input schema (the caller's fault); has `issues`.
 * - `BAD_OUTPUT`: the handler's result failed the output schema (the handler's bug); has `issues`.
 * - `BAD_PAYLOAD`: an event payload failed its schema; has `issues`.
 * - `NO_HANDLER`: the target process has no handler for the method.
 * - `NO_TARGET`: the target worker id is unknown or not connected, or no worker is live.
 * - `TARGET_EXITED`: the target exited or disconnected while the call was pending.
 * - `REMOTE`: the handler threw; `cause` carries the original's name, message, stack and `code`.
 * - `CLOSED`: the bus (or the cluster) is closed or closing.
 * - `INVALID_ARGUMENT`: the API was misused (unknown method or topic, bad option, wrong process).
 * - `PROTOCOL`: a frame with the bus's marker but a malformed shape was received.
 * - `SUBSCRIBER_FAILED`: a subscriber threw or rejected (reported on the bus's `error` event).
 * - `PAYLOAD_TOO_LARGE`: an input, result or event payload is larger than `maxPayloadBytes`;
 *   refused by the sender, before it reaches the channel.
 * - `OVERLOADED`: the channel's outbound queue is full (the peer does not keep up); nothing was
 *   sent.
 * - `VALIDATION`: an app-supplied config failed the contract's config schema; has `issues`.
 * - `CONFLICT`: a store write's `ifRevision` no longer matches the entry (nothing was written).
 * - `STORE_FULL`: a store write would exceed the store's `maxEntries` (nothing was written).
 * - `LOCK_TIMEOUT`: a lock was not acquired within its `waitMs`.
 * - `PERSIST_FAILED`: the store snapshot file could not be read (corrupt, truncated, not a
 *   snapshot) or written.
 * - `CONTRACT_MISMATCH`: a worker's contract differs from the primary's (names the methods and
 *   topics that differ); its `connect()` is refused unless the app allows drift.
 * - `PAYLOAD_TOO_DEEP`: a payload nests arrays and objects deeper than `maxDepth`; refused by the
 *   sender, and by the receiver for a frame a sender did not check.
 * - `FORBIDDEN`: a process asked for what it may not do: release or extend a lease it does not
 *   hold, or route one of the primary's system protocols to another worker. Nothing changed.
 * - `LEASE_EXPIRED`: a lease's `ttlMs` ran out (or its lock passed on) before `extend()` or
 *   `release()` reached the primary.
 * - `LIMIT_EXCEEDED`: a documented bound was reached (e.g. watches per process); `data` names the
 *   limit and its value. Nothing changed.
 * - `STARTUP_FAILED`: during `startCluster`, a slot's worker exited before it was ready, twice in
 *   a row with the same cause; `data` carries the exit code or signal and the tail of its stderr.
 */
export const BUS_ERROR_CODES = [
  'TIMEOUT',
  'ABORTED',
  'BAD_INPUT',
  'BAD_OUTPUT',
  'BAD_PAYLOAD',
  'NO_HANDLER',
  'NO_TARGET',
  'TARGET_EXITED',
  'REMOTE',
  'CLOSED',
  'INVALID_ARGUMENT',
  'PROTOCOL',
  'SUBSCRIBER_FAILED',
  'PAYLOAD_TOO_LARGE',
  'OVERLOADED',
  'VALIDATION',
  'CONFLICT',
  'STORE_FULL',
  'LOCK_TIMEOUT',
  'PERSIST_FAILED',
  'CONTRACT_MISMATCH',
  'PAYLOAD_TOO_DEEP',
  'FORBIDDEN',
  'LEASE_EXPIRED',
  'LIMIT_EXCEEDED',
  'STARTUP_FAILED',
] as const;

/** A literal union of every {@link BusError} code. See {@link BUS_ERROR_CODES}. */
export type BusErrorCode = (typeof BUS_ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(BUS_ERROR_CODES);

/**
 * One validation problem, as zod reports it (`code`, `path`, `message`), reduced to what crosses
 * a process boundary.
 */
export interface BusIssue {
  /** zod's issue code, e.g. `invalid_type`. */
  readonly code: string;
  /** Where in the value the problem is, e.g. `['a']`. */
  readonly path: readonly (string | number)[];
  /** zod's human-readable message. */
  readonly message: string;
}

/** The JSON shape a {@link BusError} takes on the wire. Produced by `toJSON`, read by `fromJSON`. */
export interface BusErrorJSON {
  /** One of {@link BUS_ERROR_CODES}. */
  readonly code: BusErrorCode;
  /** The error's message. */
  readonly message: string;
  /** zod's issues, for validation codes. */
  readonly issues?: readonly BusIssue[];
  /** For `REMOTE`: the original error's name, message, stack and own `code`. */
  readonly remote?: RemoteErrorJSON;
  /** Structured details of the failure (JSON values), e.g. the limit that was crossed. */
  readonly data?: Readonly<Record<string, unknown>>;
}

/** The original error of a `REMOTE` failure, as it crossed the boundary. */
export interface RemoteErrorJSON {
  /** The original `error.name`, e.g. `TypeError`. */
  readonly name: string;
  /** The original `error.message`. */
  readonly message: string;
  /** The original stack, as the remote process printed it. */
  readonly stack?: string;
  /** The original error's own `code` property (e.g. `ENOENT`), if a string or number. */
  readonly code?: string | number;
}

/** Options of the {@link BusError} constructor. */
export interface BusErrorOptions {
  /** The underlying error, as in `new Error(message, { cause })`. */
  readonly cause?: unknown;
  /** Validation issues, for `BAD_INPUT`, `BAD_OUTPUT`, `BAD_PAYLOAD` and `VALIDATION`. */
  readonly issues?: readonly BusIssue[];
  /**
   * Structured details (JSON values only: they cross process boundaries in the wire form), e.g.
   * `{ limit: 'maxWatches', value: 10_000 }` or a worker's exit code and stderr tail.
   */
  readonly data?: Readonly<Record<string, unknown>>;
}

/**
 * The error a handler threw in another process, rebuilt in the caller's: same `name`, `message`,
 * `stack` (the remote one) and own `code`. Found as the `cause` of a `REMOTE` {@link BusError}.
 */
export class RemoteError extends Error {
  /** The original error's own `code` property, if it had a string or number one. */
  readonly code: string | number | undefined;

  constructor(json: RemoteErrorJSON) {
    super(json.message);
    this.name = json.name;
    this.code = json.code;
    if (json.stack !== undefined) this.stack = json.stack;
    else this.stack = `${json.name}: ${json.message}`;
  }
}

/**
 * The error every clusterbus operation rejects with. `code` says what happened
 * ({@link BusErrorCode}); validation failures carry zod's `issues`; `REMOTE` failures carry the
 * handler's original error as `cause` (a {@link RemoteError}).
 *
 * Its wire form is {@link BusError.toJSON} / {@link BusError.fromJSON}.
 */
export class BusError extends Error {
  /** Always `'BusError'`. */
  override readonly name = 'BusError';
  /** What happened, one of {@link BUS_ERROR_CODES}. */
  readonly code: BusErrorCode;
  /** zod's issues, for `BAD_INPUT`, `BAD_OUTPUT` and `BAD_PAYLOAD`. */
  readonly issues: readonly BusIssue[] | undefined;
  /** Structured details, e.g. the limit crossed or a worker's exit code (JSON values). */
  readonly data: Readonly<Record<string, unknown>> | undefined;

  /**
   * @param code - one of {@link BUS_ERROR_CODES}.
   * @param message - a sentence for humans.
   * @param options - `cause` and `issues`.
   */
  constructor(code: BusErrorCode, message: string, options: BusErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.issues = options.issues;
    this.data = options.data;
  }

  /** The wire form: code, message, issues and (for `REMOTE`) the original error. */
  toJSON(): BusErrorJSON {
    const json: { -readonly [K in keyof BusErrorJSON]: BusErrorJSON[K] } = {
      code: this.code,
      message: this.message,
    };
    if (this.issues !== undefined) json.issues = this.issues;
    if (this.data !== undefined) json.data = this.data;
    if (this.cause instanceof RemoteError) {
      const c = this.cause;
      json.remote = {
        name: c.name,
        message: c.message,
        ...(c.stack !== undefined ? { stack: c.stack } : {}),
        ...(c.code !== undefined ? { code: c.code } : {}),
      };
    }
    return json;
  }

  /**
   * Rebuilds a BusError from its wire form. Anything that is not exactly that shape gives a
   * `PROTOCOL` error that says so, never a throw.
   */
  static fromJSON(value: unknown): BusError {
    if (!isBusErrorJSON(value)) {
      return new BusError('PROTOCOL', 'received a malformed error frame');
    }
    const cause = value.remote === undefined ? undefined : new RemoteError(value.remote);
    return new BusError(value.code, value.message, {
      ...(cause !== undefined ? { cause } : {}),
      ...(value.issues !== undefined ? { issues: value.issues } : {}),
      ...(value.data !== undefined ? { data: value.data } : {}),
    });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIssue(value: unknown): value is BusIssue {
  return (
    isRecord(value) &&
    typeof value.code === 'string' &&
    typeof value.message === 'string' &&
    Array.isArray(value.path) &&
    value.path.every((p) => typeof p === 'string' || typeof p === 'number')
  );
}

function isRemoteJSON(value: unknown): value is RemoteErrorJSON {
  return (
    isRecord(value) &&
    typeof value.name === 'string' &&
    typeof value.message === 'string' &&
    (value.stack === undefined || typeof value.stack === 'string') &&
    (value.code === undefined || typeof value.code === 'string' || typeof value.code === 'number')
  );
}

/** Strict shape check of a {@link BusErrorJSON}. */
export function isBusErrorJSON(value: unknown): value is BusErrorJSON {
  return (
    isRecord(value) &&
    typeof value.code === 'string' &&
    CODE_SET.has(value.code) &&
    typeof value.message === 'string' &&
    (value.issues === undefined || (Array.isArray(value.issues) && value.issues.every(isIssue))) &&
    (value.remote === undefined || isRemoteJSON(value.remote)) &&
    (value.data === undefined || isRecord(value.data))
  );
}

/** Reads `error.message` of anything without ever throwing (getters may throw). */
function describe(thrown: unknown): {
  name: string;
  message: string;
  stack?: string;
  code?: string | number;
} {
  try {
    if (thrown instanceof Error) {
      const own = (thrown as { code?: unknown }).code;
      return {
        name: String(thrown.name),
        message: String(thrown.message),
        ...(typeof thrown.stack === 'string' ? { stack: thrown.stack } : {}),
        ...(typeof own === 'string' || typeof own === 'number' ? { code: own } : {}),
      };
    }
    if (typeof thrown === 'string') return { name: 'Error', message: thrown };
    if (thrown === undefined || thrown === null) {
      return { name: 'Error', message: `a non-Error value was thrown: ${String(thrown)}` };
    }
    let text: string;
    try {
      text = JSON.stringify(thrown) ?? String(thrown);
    } catch {
      text = Object.prototype.toString.call(thrown);
    }
    return { name: 'Error', message: `a non-Error value was thrown: ${text}` };
  } catch {
    return { name: 'Error', message: 'a value was thrown that could not be described' };
  }
}

/**
 * Turns what a handler threw into the `REMOTE` BusError sent back to the caller. A BusError
 * thrown by the handler (say, from a nested call) becomes the `cause`, its code kept there.
 *
 * @param thrown - anything: an Error, a string, `undefined`, an object whose getters throw.
 * @param where - who threw, for the message, e.g. `handler 'add' on worker 2`.
 */
export function toRemoteError(thrown: unknown, where: string): BusError {
  const d = describe(thrown);
  const remote = new RemoteError(d);
  return new BusError('REMOTE', `${where} threw ${d.name}: ${d.message}`, { cause: remote });
}

/**
 * Normalizes anything thrown into a BusError: a BusError is returned as it is; anything else
 * becomes `fallback` with the original as `cause`.
 */
export function toBusError(thrown: unknown, fallback: BusErrorCode, message?: string): BusError {
  if (thrown instanceof BusError) return thrown;
  const d = describe(thrown);
  return new BusError(fallback, message ?? d.message, { cause: thrown });
}

/** Converts zod's issues to the wire-safe {@link BusIssue} form. */
export function toIssues(
  issues: readonly { code: string; path: readonly PropertyKey[]; message: string }[],
): BusIssue[] {
  return issues.map((i) => ({
    code: String(i.code),
    path: i.path.map((p) => (typeof p === 'number' ? p : String(p))),
    message: String(i.message),
  }));
}
