/**
 * The `clusterbus` command's logic, importable: parse the arguments (`node:util` parseArgs),
 * talk to the management API, print, and return the exit code: 0 done, 1 the cluster is unhealthy
 * or the API refused (401, 400, 409, 501, a failed restart), 2 a usage error or an API that
 * cannot be reached.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import type { RestartProgress, ScaleProgress, StatsBody } from '../management/types.js';
import { type ApiTarget, api, CliError, describeFailure } from './client.js';
import { statusTable } from './format.js';

/** Where the CLI prints. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

/** The help text. */
export const USAGE = `Usage: clusterbus <command> [options]

Talks to the management API of a running clusterbus cluster.

Commands:
  status          the workers as a table; exits 1 when GET /health is not 200
  restart         a rolling restart; waits until it is done (exits 1 if it fails)
  scale <N>       scale to N workers; waits until it is done
  metrics         print GET /metrics (the Prometheus text format)

Options:
  --url <url>     the API's base URL
                  (default http://$CLUSTER_API_HOST:$CLUSTER_API_PORT, host 127.0.0.1)
  --token <tok>   the bearer token (default $CLUSTER_API_TOKEN; prefer the variable:
                  a command line is visible to every user of the machine)
  --no-wait       restart, scale: return once the operation is accepted
  --json          status: print the /stats JSON instead of the table
  --interval-ms <n>  how often to poll while waiting, in ms (default 500)
  -h, --help      this help

Exit codes: 0 done; 1 unhealthy, refused or failed; 2 usage error or API unreachable.`;

/** Runs the command line `argv` (without `node` and the script); returns the exit code. */
export async function run(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  output: Output,
): Promise<number> {
  try {
    return await dispatch(argv, env, output);
  } catch (error) {
    if (error instanceof CliError) {
      output.err(`clusterbus: ${error.message}`);
      if (error.exitCode === 2 && error.message.startsWith('usage:'))
        output.err('try clusterbus --help');
      return error.exitCode;
    }
    output.err(`clusterbus: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

async function dispatch(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  output: Output,
): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new CliError(`usage: ${(error as Error).message}`, 2);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    output.out(USAGE);
    return 0;
  }
  const [command, ...rest] = positionals;
  if (command === undefined) throw new CliError('usage: no command given', 2);
  const intervalMs = Number(values['interval-ms'] ?? 500);
  if (!Number.isSafeInteger(intervalMs) || intervalMs < 1) {
    throw new CliError(
      `usage: --interval-ms must be a positive integer, got ${values['interval-ms']}`,
      2,
    );
  }
  const wait = values['no-wait'] !== true;
  const expectArgs = (n: number) => {
    if (rest.length !== n) {
      throw new CliError(
        `usage: ${command} takes ${n === 0 ? 'no argument' : `${n} argument`}, got ${rest.length}`,
        2,
      );
    }
  };
  switch (command) {
    case 'status':
      expectArgs(0);
      return status(target(values, env), values.json === true, output);
    case 'restart':
      expectArgs(0);
      return restart(target(values, env), wait, intervalMs, output);
    case 'scale': {
      expectArgs(1);
      const n = Number(rest[0]);
      if (!/^\d+$/.test(rest[0]!) || !Number.isSafeInteger(n) || n < 1) {
        throw new CliError(`usage: scale N needs a positive integer, got '${rest[0]}'`, 2);
      }
      return scale(target(values, env), n, wait, intervalMs, output);
    }
    case 'metrics':
      expectArgs(0);
      return metrics(target(values, env), output);
    default:
      throw new CliError(`usage: unknown command '${command}'`, 2);
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      'no-wait': { type: 'boolean' },
      json: { type: 'boolean' },
      'interval-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/** The API's address and token, from the flags, then the environment. */
function target(
  values: { url?: string | undefined; token?: string | undefined },
  env: Readonly<Record<string, string | undefined>>,
): ApiTarget {
  let url = values.url;
  if (url === undefined) {
    const port = env.CLUSTER_API_PORT;
    if (port === undefined || port === '') {
      throw new CliError('usage: no API address: pass --url, or set CLUSTER_API_PORT', 2);
    }
    const host = env.CLUSTER_API_HOST || '127.0.0.1';
    url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new CliError(`usage: --url must be an http:// URL, got '${url}'`, 2);
  }
  return { url, token: values.token ?? (env.CLUSTER_API_TOKEN || undefined), timeoutMs: 10_000 };
}

async function status(t: ApiTarget, json: boolean, output: Output): Promise<number> {
  const health = await api(t, 'GET', 'health');
  const stats = await api(t, 'GET', 'stats');
  if (stats.status !== 200) throw new CliError(describeFailure(stats), 1);
  output.out(
    json
      ? JSON.stringify(stats.json, null, 2)
      : statusTable(stats.json as StatsBody, health.status === 200),
  );
  if (health.status !== 200) {
    const problems =
      (health.json as { problems?: { slot: number; reason: string }[] } | undefined)?.problems ??
      [];
    for (const p of problems) output.err(`slot ${p.slot}: ${p.reason}`);
    return 1;
  }
  return 0;
}

async function restart(
  t: ApiTarget,
  wait: boolean,
  intervalMs: number,
  output: Output,
): Promise<number> {
  const started = await api(t, 'POST', 'restart');
  if (started.status !== 202) throw new CliError(describeFailure(started), 1);
  let progress = started.json as RestartProgress;
  output.out(`rolling restart ${progress.id} started (${progress.total} workers)`);
  if (!wait) return 0;
  let shown = -1;
  while (progress.state === 'running') {
    if (progress.replaced !== shown) {
      output.out(`  ${progress.replaced}/${progress.total} replaced`);
      shown = progress.replaced;
    }
    await sleep(intervalMs);
    const answer = await api(t, 'GET', `restart/${encodeURIComponent(progress.id)}`);
    if (answer.status !== 200) throw new CliError(describeFailure(answer), 1);
    progress = answer.json as RestartProgress;
  }
  if (progress.state === 'failed') {
    throw new CliError(
      `rolling restart failed after ${progress.replaced}/${progress.total}: ${progress.error?.code}: ${progress.error?.message}`,
      1,
    );
  }
  const seconds = ((progress.endedAt ?? progress.startedAt) - progress.startedAt) / 1000;
  output.out(
    `rolling restart done in ${seconds.toFixed(1)} s: ${progress.slots.map((s) => `slot ${s.slot}: worker ${s.from ?? '-'} -> ${s.to}`).join(', ')}`,
  );
  return 0;
}

async function scale(
  t: ApiTarget,
  n: number,
  wait: boolean,
  intervalMs: number,
  output: Output,
): Promise<number> {
  const started = await api(t, 'POST', 'scale', { workers: n });
  if (started.status !== 202) throw new CliError(describeFailure(started), 1);
  let progress = started.json as ScaleProgress;
  output.out(`scaling from ${progress.from} to ${progress.to} workers`);
  if (!wait) return 0;
  while (progress.state === 'running') {
    await sleep(intervalMs);
    const answer = await api(t, 'GET', 'stats');
    if (answer.status !== 200) throw new CliError(describeFailure(answer), 1);
    const current = (answer.json as StatsBody).scale;
    // Another scale started meanwhile: this one is over, the count is now the other's.
    if (current === null || current.id !== progress.id) break;
    progress = current;
  }
  if (progress.state === 'failed') {
    throw new CliError(
      `scale to ${n} failed: ${progress.error?.code}: ${progress.error?.message}`,
      1,
    );
  }
  output.out(`scaled to ${progress.to} workers`);
  return 0;
}

async function metrics(t: ApiTarget, output: Output): Promise<number> {
  const answer = await api(t, 'GET', 'metrics');
  if (answer.status !== 200) throw new CliError(describeFailure(answer), 1);
  output.out(answer.text.replace(/\n$/, ''));
  return 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
