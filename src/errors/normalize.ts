/**
 * Normalization: anything thrown made into a {@link BusError} (`toBusError`, `toRemoteError`),
 * with a bounded, safe copy of its own data; and the one-line summary of validation issues.
 * Re-exported by `errors.ts`, the module the rest of the code imports from.
 *
 * @module
 */
import { readProperty as read } from '../util/read.js';
import {
  BusError,
  type BusErrorCode,
  type BusIssue,
  isRecord,
  LINE_BREAK,
  oneLine,
  RemoteError,
  type RemoteErrorJSON,
} from './bus-error.js';

// ---------------------------------------------------------------------------------------------
// One-line summaries of validation issues.

/** How many issues a summary names before `(+N more)`. */
const SUMMARY_MAX_ISSUES = 3;
/** The longest text of one issue in a summary, in characters. */
const ISSUE_TEXT_MAX_CHARS = 200;
/** The longest part of a thrown error's message quoted in a `REMOTE` message, in characters. */
const QUOTED_MESSAGE_MAX_CHARS = 1_000;

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
