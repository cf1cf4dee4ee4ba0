/**
 * One error class for everything the bus rejects with, its wire form, and the one function that
 * turns anything thrown into it.
 *
 * @module
 */
import { readProperty as read } from './util/read.js';

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
 *   carries the slot, the exit code or signal and the tail of its stderr.
 * - `REPLACEMENT_FAILED`: no replacement could be started for a worker the health monitor
 *   declared unhealthy (reported on the app's `error` event; `cause` says why). The unhealthy
 *   worker is then restarted as a crash would be.
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
  /** zod's issues, for validation codes (a `REMOTE` error's travel in `remote.issues`). */
  readonly issues?: readonly BusIssue[];
  /** For `REMOTE`: the original error's name, message, stack, own `code`, issues and data. */
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

/** Options of the {@link BusError} constructor. */
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

/** How many issues a summary names before `(+N more)`. */
const SUMMARY_MAX_ISSUES = 3;
/** The longest text of one issue in a summary, in characters. */
const ISSUE_TEXT_MAX_CHARS = 200;
/** The longest part of a thrown error's message quoted in a `REMOTE` message, in characters. */
const QUOTED_MESSAGE_MAX_CHARS = 1_000;

const LINE_BREAK = /[\r\n\u2028\u2029]/;

/** Folds line breaks, and the blanks around them, into one space. */
function oneLine(text: string): string {
  return LINE_BREAK.test(text) ? text.replace(/\s*[\r\n\u2028\u2029]+\s*/g, ' ').trim() : text;
}

function clip(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, maxChars - 1)}…`;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** Where an issue is, as an accessor path from `root`: `input.items[0].name`, `input["a b"]`. */
function formatPath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && IDENTIFIER.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${typeof key === 'string' ? JSON.stringify(key) : String(key)}]`;
  }
  return out;
}

/**
 * One line naming the first issues of a validation failure, for a {@link BusError}'s message:
 * `input.a: expected number, received string; input.b: Too small: expected string to have >=3
 * characters (+2 more)`. At most 3 issues are named; the full list belongs in `issues`. zod's
 * generic `Invalid input: ` prefix is left out.
 *
 * @param issues - zod's issues, or {@link BusIssue}s.
 * @param root - what was validated, the start of every path: `input`, `output`, `payload`,
 *   `config`, `value`; `''` for paths as they are.
 */
export function summarizeIssues(
  issues: readonly { readonly path: readonly PropertyKey[]; readonly message: string }[],
  root = '',
): string {
  if (issues.length === 0) return root === '' ? 'invalid' : `${root}: invalid`;
  const named = issues.slice(0, SUMMARY_MAX_ISSUES).map((issue) => {
    const where = clip(formatPath(root, issue.path), ISSUE_TEXT_MAX_CHARS);
    const text = clip(
      oneLine(String(issue.message)).replace(/^Invalid input: /, ''),
      ISSUE_TEXT_MAX_CHARS,
    );
    return where === '' ? text : `${where}: ${text}`;
  });
  const more = issues.length - named.length;
  return more > 0 ? `${named.join('; ')} (+${more} more)` : named.join('; ');
}

/** The part of a thrown error's message that a BusError's one-line message quotes. */
function headline(d: RemoteErrorJSON): string {
  // A ZodError's message is its issues as pretty-printed JSON: name them instead.
  if (d.issues !== undefined && LINE_BREAK.test(d.message)) return summarizeIssues(d.issues);
  return clip(oneLine(d.message), QUOTED_MESSAGE_MAX_CHARS);
}

// ---------------------------------------------------------------------------------------------
// Describing anything thrown, for the wire.

/**
 * The most JSON text the `data` of a `REMOTE` error's cause may take, in characters: properties
 * that do not fit are left out, whole.
 */
const REMOTE_DATA_MAX_CHARS = 16 * 1024;
/** The deepest nesting of arrays and objects kept in that `data`; deeper branches are left out. */
const REMOTE_DATA_MAX_DEPTH = 16;

/** Properties of an `Error` that travel on their own, not in `data`. */
const ERROR_KEYS: ReadonlySet<string> = new Set([
  'name',
  'message',
  'stack',
  'code',
  'cause',
  'issues',
]);

/** Marks a value JSON cannot carry (`undefined`, a function, a symbol, a bigint, a cycle). */
const DROP: unique symbol = Symbol('drop');

interface Budget {
  /** Characters of JSON text left; below 0 means over. */
  left: number;
}

/**
 * A copy of `value` made of JSON values only, as `JSON.parse(JSON.stringify(value))` would give
 * (`toJSON` called, non-finite numbers as `null`, what JSON cannot carry left out), but bounded
 * in depth and size, safe from cycles, and without `__proto__` keys. {@link DROP} when it does not
 * fit or cannot be carried at all.
 */
function toJsonValue(value: unknown, depth: number, budget: Budget, ancestors: object[]): unknown {
  switch (typeof value) {
    case 'string':
      budget.left -= value.length + 2;
      return value;
    case 'boolean':
      budget.left -= 5;
      return value;
    case 'number':
      budget.left -= 24;
      return Number.isFinite(value) ? value : null;
    case 'object':
      break;
    default:
      return DROP;
  }
  if (value === null) {
    budget.left -= 4;
    return null;
  }
  if (depth > REMOTE_DATA_MAX_DEPTH || ancestors.includes(value)) return DROP;
  const toJSON = read(value, 'toJSON');
  if (typeof toJSON === 'function') {
    let replaced: unknown;
    try {
      replaced = toJSON.call(value, '');
    } catch {
      return DROP;
    }
    ancestors.push(value);
    try {
      return toJsonValue(replaced, depth + 1, budget, ancestors);
    } finally {
      ancestors.pop();
    }
  }
  budget.left -= 2;
  ancestors.push(value);
  try {
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      for (let i = 0; i < value.length && budget.left >= 0; i++) {
        const item = toJsonValue(read(value, String(i)), depth + 1, budget, ancestors);
        budget.left -= 1;
        out.push(item === DROP ? null : item);
      }
      return budget.left < 0 ? DROP : out;
    }
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      if (budget.left < 0) break;
      if (key === '__proto__') continue;
      budget.left -= key.length + 4;
      const item = toJsonValue(read(value, key), depth + 1, budget, ancestors);
      if (item !== DROP) out[key] = item;
    }
    return budget.left < 0 ? DROP : out;
  } finally {
    ancestors.pop();
  }
}

/**
 * `source[key]` for each of `keys`, as JSON values within {@link REMOTE_DATA_MAX_CHARS}: a
 * property that does not fit is left out whole, the next ones may still fit. Never throws.
 */
function toJsonRecord(
  source: object,
  keys: readonly string[],
): Record<string, unknown> | undefined {
  const budget: Budget = { left: REMOTE_DATA_MAX_CHARS };
  const out: Record<string, unknown> = {};
  let kept = 0;
  for (const key of keys) {
    if (key === '__proto__') continue;
    const before = budget.left;
    budget.left -= key.length + 4;
    let value: unknown;
    try {
      value = toJsonValue(read(source, key), 1, budget, [source]);
    } catch {
      value = DROP;
    }
    if (value === DROP || budget.left < 0) {
      budget.left = before;
      continue;
    }
    out[key] = value;
    kept++;
  }
  return kept > 0 ? out : undefined;
}

/** A thrown error's `issues`, if it has a list of issue-like entries; never throws. */
function issuesOf(error: Error): BusIssue[] | undefined {
  try {
    const list = read(error, 'issues');
    if (!Array.isArray(list)) return undefined;
    const out: BusIssue[] = [];
    for (const item of list) {
      if (!isRecord(item)) continue;
      const { code, path, message } = item;
      if (typeof message !== 'string' || !Array.isArray(path)) continue;
      out.push({
        code: typeof code === 'string' ? code : 'custom',
        path: path.map((p: unknown) => (typeof p === 'number' ? p : String(p))),
        message,
      });
    }
    return out.length > 0 ? out : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A thrown error's data: a BusError's (or RemoteError's) `data`; for any other `Error`, its own
 * enumerable properties but those of {@link ERROR_KEYS}. JSON values only, bounded; never throws.
 */
function dataOf(error: Error): Record<string, unknown> | undefined {
  try {
    if (error instanceof BusError || error instanceof RemoteError) {
      const data = read(error, 'data');
      return isRecord(data) ? toJsonRecord(data, Object.keys(data)) : undefined;
    }
    return toJsonRecord(
      error,
      Object.keys(error).filter((k) => !ERROR_KEYS.has(k)),
    );
  } catch {
    return undefined;
  }
}

/** Reads name, message, stack, code, issues and data of anything, without ever throwing. */
function describe(thrown: unknown): RemoteErrorJSON {
  try {
    if (thrown instanceof Error) {
      const own = (thrown as { code?: unknown }).code;
      const issues = issuesOf(thrown);
      const data = dataOf(thrown);
      return {
        name: String(thrown.name),
        message: String(thrown.message),
        ...(typeof thrown.stack === 'string' ? { stack: thrown.stack } : {}),
        ...(typeof own === 'string' || typeof own === 'number' ? { code: own } : {}),
        ...(issues !== undefined ? { issues } : {}),
        ...(data !== undefined ? { data } : {}),
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
 * Turns what a handler threw into the `REMOTE` BusError sent back to the caller. The original
 * becomes the `cause`, a {@link RemoteError} with its name, message, stack, own `code`, `issues`
 * and data: a BusError thrown by the handler (its own validation, a nested call) keeps its code
 * and issues there, and the issues are also the REMOTE error's own `issues`.
 *
 * @param thrown - anything: an Error, a string, `undefined`, an object whose getters throw.
 * @param where - who threw, for the message, e.g. `handler 'add' on worker 2`.
 */
export function toRemoteError(thrown: unknown, where: string): BusError {
  const d = describe(thrown);
  const remote = new RemoteError(d);
  return new BusError('REMOTE', `${where} threw ${d.name}: ${headline(d)}`, {
    cause: remote,
    ...(remote.issues !== undefined ? { issues: remote.issues } : {}),
  });
}

/**
 * Normalizes anything thrown into a BusError: a BusError is returned as it is; anything else
 * becomes `fallback` with the original as `cause`.
 */
export function toBusError(thrown: unknown, fallback: BusErrorCode, message?: string): BusError {
  if (thrown instanceof BusError) return thrown;
  return new BusError(fallback, message ?? headline(describe(thrown)), { cause: thrown });
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
