/**
 * The CLI's HTTP client of the management API: one request with a timeout, its errors turned
 * into {@link CliError}s with an exit code (2 when the API cannot be reached, 1 for an error
 * answer).
 *
 * @module
 */

/** A failure the CLI reports: its message, and the exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

/** An answer of the API: its status and its body (parsed when it is JSON). */
export interface ApiAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
  readonly json: unknown;
}

/** Where the API is, and with which token. */
export interface ApiTarget {
  /** The base URL, e.g. `http://127.0.0.1:9000`. */
  readonly url: string;
  readonly token: string | undefined;
  /** Each request's timeout, in ms. */
  readonly timeoutMs: number;
}

/**
 * Sends one request to the API.
 * @throws {@link CliError} with exit code 2 when it cannot be reached or does not answer in time.
 */
export async function api(
  target: ApiTarget,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  if (target.token !== undefined) headers.authorization = `Bearer ${target.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const url = new URL(path, target.url.endsWith('/') ? target.url : `${target.url}/`);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(target.timeoutMs),
    });
  } catch (error) {
    throw new CliError(`cannot reach the management API at ${target.url}: ${reason(error)}`, 2);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text, json };
}

/** Why a fetch failed, in a few words (`ECONNREFUSED`, `timed out after 10000 ms`). */
function reason(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'no answer in time';
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return error instanceof Error ? error.message : String(error);
}

/**
 * The error message of an answer that is not a success: its status and the API's `error`
 * (with zod's issues, for a 400), plus a hint for 401 and 403.
 */
export function describeFailure(answer: ApiAnswer): string {
  const body = answer.json as { error?: unknown; issues?: unknown } | undefined;
  let message = `HTTP ${answer.status}`;
  if (typeof body?.error === 'string') message += `: ${body.error}`;
  else if (answer.text.length > 0) message += `: ${answer.text.slice(0, 200)}`;
  if (Array.isArray(body?.issues)) {
    for (const issue of body.issues as { path?: unknown[]; message?: unknown }[]) {
      const path =
        Array.isArray(issue.path) && issue.path.length > 0 ? issue.path.join('.') : '(body)';
      message += `\n  ${path}: ${String(issue.message)}`;
    }
  }
  if (answer.status === 401) message += '\n  pass --token or set CLUSTER_API_TOKEN';
  return message;
}
