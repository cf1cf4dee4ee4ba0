/**
 * The error class every clusterbus operation rejects with, its codes, and its wire form
 * (`toJSON`, and `fromJSON` with its strict shape check). Re-exported by `errors.ts`, the module
 * the rest of the code imports from.
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
 * - `REMOTE`: the handler threw; `cause` (a {@link RemoteError}) carries the original's name,
 *   message, stack, `code`, `issues` and data; its `issues` are also the REMOTE error's `issues`.
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
 *   a row with the same cause (or once with `restart: false`, or at the restart limit); `data`
 *   carries the slot, the exit code or signal and the tail of its stderr. From `createPool`
 *   (`clusterbus/threads`): a thread failed twice in a row before it connected (`cause` is what
 *   it threw), or did not connect within `startTimeoutMs`.
 * - `REPLACEMENT_FAILED`: no replacement could be started for a worker the health monitor
 *   declared unhealthy (reported on the app's `error` event; `cause` says why). The unhealthy
 *   worker is then restarted as a crash would be.
 * - `NOT_INSTALLED`: an optional peer dependency the feature needs is not installed (e.g.
 *   `prom-client` for `app.metrics()`); `data.module` names it.
 * - `JOB_FAILED`: a run-once job (`bus.singleton`) or a scheduled tick (`bus.schedule`) threw or
 *   rejected; reported on the bus's `error` event, `cause` is what it threw, `data` names the job.
 * @category Errors
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
  'REPLACEMENT_FAILED',
  'NOT_INSTALLED',
  'JOB_FAILED',
] as const;

/** A literal union of every {@link BusError} code. See {@link BUS_ERROR_CODES}. @category Errors */
export type BusErrorCode = (typeof BUS_ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(BUS_ERROR_CODES);

/**
 * One validation problem, as zod reports it (`code`, `path`, `message`), reduced to what crosses
 * a process boundary.
 * @category Errors
 */
export interface BusIssue {
  /** zod's issue code, e.g. `invalid_type`. */
  readonly code: string;
  /** Where in the value the problem is, e.g. `['a']`. */
  readonly path: readonly (string | number)[];
  /** zod's human-readable message. */
  readonly message: string;
}

/**
 * The JSON shape a {@link BusError} takes on the wire. Produced by `toJSON`, read by `fromJSON`.
 * @category Errors
 */
export interface BusErrorJSON {
  /** One of {@link BUS_ERROR_CODES}. */
  readonly code: BusErrorCode;
  /** The error's message. */
  readonly message: string;
  /** zod's issues, for validation codes (a `REMOTE` error's travel in `remote.issues`). */
  readonly issues?: readonly BusIssue[];
  /** For `REMOTE`: the original error's name, message, stack, own `code`, issues and data. */
  readonly remote?: RemoteErrorJSON;
  /** Structured details of the failure (JSON values), e.g. the limit that was crossed. */
  readonly data?: Readonly<Record<string, unknown>>;
}

/** The original error of a `REMOTE` failure, as it crossed the boundary. @category Errors */
export interface RemoteErrorJSON {
  /** The original `error.name`, e.g. `TypeError`. */
  readonly name: string;
  /** The original `error.message`. */
  readonly message: string;
  /** The original stack, as the remote process printed it. */
  readonly stack?: string;
  /** The original error's own `code` property (e.g. `ENOENT`), if a string or number. */
  readonly code?: string | number;
  /** The original error's `issues` (a `BusError`'s, a `ZodError`'s), in {@link BusIssue} form. */
  readonly issues?: readonly BusIssue[];
  /**
   * A thrown `BusError`'s `data`; for any other `Error`, its own enumerable properties other than
   * `name`, `message`, `stack`, `code`, `cause` and `issues` (e.g. `{ status: 404 }`), as JSON.
   * At most 16 KiB (16_384 characters of JSON text) and 16 levels of nesting: a property that
   * does not fit is left out whole, deeper branches are cut, and what JSON cannot carry
   * (functions, symbols, bigints, cycles, `__proto__` keys) is dropped.
   */
  readonly data?: Readonly<Record<string, unknown>>;
}

/** Options of the {@link BusError} constructor. @category Errors */
export interface BusErrorOptions {
  /** The underlying error, as in `new Error(message, { cause })`. */
  readonly cause?: unknown;
  /**
   * Validation issues, for `BAD_INPUT`, `BAD_OUTPUT`, `BAD_PAYLOAD` and `VALIDATION` (and a
   * `REMOTE` error's: its cause's).
   */
  readonly issues?: readonly BusIssue[];
  /**
   * Structured details (JSON values only: they cross process boundaries in the wire form), e.g.
   * `{ limit: 'maxWatches', value: 10_000 }` or a worker's exit code and stderr tail.
   */
  readonly data?: Readonly<Record<string, unknown>>;
}

/**
 * The error a handler threw in another process, rebuilt in the caller's: same `name`, `message`,
 * `stack` (the remote one), own `code`, `issues` and `data`. Found as the `cause` of a `REMOTE`
 * {@link BusError}: a handler that threw `new BusError('BAD_INPUT', …, { issues })` reaches the
 * caller as `err.code === 'REMOTE'`, `err.cause.code === 'BAD_INPUT'`, `err.cause.issues`
 * (also `err.issues`).
 * @category Errors
 */
export class RemoteError extends Error {
  /** The original error's own `code` property, if it had a string or number one. */
  readonly code: string | number | undefined;
  /** The original error's `issues`, if it had a list of them (a `BusError`, a `ZodError`). */
  readonly issues: readonly BusIssue[] | undefined;
  /** The original error's data (JSON values): see {@link RemoteErrorJSON.data}. */
  readonly data: Readonly<Record<string, unknown>> | undefined;

  constructor(json: RemoteErrorJSON) {
    super(json.message);
    this.name = json.name;
    this.code = json.code;
    this.issues = json.issues;
    this.data = json.data;
    if (json.stack !== undefined) this.stack = json.stack;
    else this.stack = `${json.name}: ${json.message}`;
  }
}

/**
 * The error every clusterbus operation rejects with. `code` says what happened
 * ({@link BusErrorCode}); validation failures carry zod's `issues`; `REMOTE` failures carry the
 * handler's original error as `cause` (a {@link RemoteError}), and its `issues` if it had some.
 * `message` is always one line: validation failures summarize their first issues there
 * (`input.a: expected number, received string; …`), the full list is `issues`.
 *
 * Its wire form is {@link BusError.toJSON} / {@link BusError.fromJSON}.
 * @category Errors
 */
export class BusError extends Error {
  /** Always `'BusError'`. */
  override readonly name = 'BusError';
  /** What happened, one of {@link BUS_ERROR_CODES}. */
  readonly code: BusErrorCode;
  /**
   * zod's issues, for `BAD_INPUT`, `BAD_OUTPUT`, `BAD_PAYLOAD` and `VALIDATION`; for `REMOTE`, the
   * issues of the handler's error (the same list as `cause.issues`).
   */
  readonly issues: readonly BusIssue[] | undefined;
  /** Structured details, e.g. the limit crossed or a worker's exit code (JSON values). */
  readonly data: Readonly<Record<string, unknown>> | undefined;

  /**
   * @param code - one of {@link BUS_ERROR_CODES}.
   * @param message - a sentence for humans; line breaks in it are folded into spaces, so that
   *   `message` (and the first line of `stack`) is one line.
   * @param options - `cause`, `issues` and `data`.
   */
  constructor(code: BusErrorCode, message: string, options: BusErrorOptions = {}) {
    super(oneLine(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.issues = options.issues;
    if (options.issues !== undefined && options.issues === remoteIssues(options.cause)) {
      // A REMOTE error's issues are its cause's: `util.inspect` prints them once, in the cause.
      Object.defineProperty(this, 'issues', { enumerable: false });
    }
    this.data = options.data;
  }

  /**
   * The wire form: code, message, issues, data and (for `REMOTE`) the original error. A `REMOTE`
   * error's issues travel once, in `remote.issues`.
   */
  toJSON(): BusErrorJSON {
    const json: { -readonly [K in keyof BusErrorJSON]: BusErrorJSON[K] } = {
      code: this.code,
      message: this.message,
    };
    const c = this.cause instanceof RemoteError ? this.cause : undefined;
    if (this.issues !== undefined && this.issues !== c?.issues) json.issues = this.issues;
    if (this.data !== undefined) json.data = this.data;
    if (c !== undefined) {
      json.remote = {
        name: c.name,
        message: c.message,
        ...(c.stack !== undefined ? { stack: c.stack } : {}),
        ...(c.code !== undefined ? { code: c.code } : {}),
        ...(c.issues !== undefined ? { issues: c.issues } : {}),
        ...(c.data !== undefined ? { data: c.data } : {}),
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
    const issues = value.issues ?? cause?.issues;
    return new BusError(value.code, value.message, {
      ...(cause !== undefined ? { cause } : {}),
      ...(issues !== undefined ? { issues } : {}),
      ...(value.data !== undefined ? { data: value.data } : {}),
    });
  }
}

function remoteIssues(cause: unknown): readonly BusIssue[] | undefined {
  return cause instanceof RemoteError ? cause.issues : undefined;
}

/** @internal Whether `value` is a plain record: an object, not `null`, not an array. */
export function isRecord(value: unknown): value is Record<string, unknown> {
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

function isIssueList(value: unknown): value is readonly BusIssue[] {
  return Array.isArray(value) && value.every(isIssue);
}

function isRemoteJSON(value: unknown): value is RemoteErrorJSON {
  return (
    isRecord(value) &&
    typeof value.name === 'string' &&
    typeof value.message === 'string' &&
    (value.stack === undefined || typeof value.stack === 'string') &&
    (value.code === undefined ||
      typeof value.code === 'string' ||
      typeof value.code === 'number') &&
    (value.issues === undefined || isIssueList(value.issues)) &&
    (value.data === undefined || isRecord(value.data))
  );
}

/** Strict shape check of a {@link BusErrorJSON}. */
export function isBusErrorJSON(value: unknown): value is BusErrorJSON {
  return (
    isRecord(value) &&
    typeof value.code === 'string' &&
    CODE_SET.has(value.code) &&
    typeof value.message === 'string' &&
    (value.issues === undefined || isIssueList(value.issues)) &&
    (value.remote === undefined || isRemoteJSON(value.remote)) &&
    (value.data === undefined || isRecord(value.data))
  );
}

// ---------------------------------------------------------------------------------------------
// One-line messages.

/** @internal A line break, of any kind a message may hold. */
export const LINE_BREAK = /[\r\n\u2028\u2029]/;

/** @internal Folds line breaks, and the blanks around them, into one space. */
export function oneLine(text: string): string {
  return LINE_BREAK.test(text) ? text.replace(/\s*[\r\n\u2028\u2029]+\s*/g, ' ').trim() : text;
}
