/**
 * The demo's load generator: autocannon (as a library) against the cluster's port, with every
 * response tallied from its own headers (`x-route`, `x-worker`), and an end that fails nothing:
 * `finish()` stops sending, then waits for the answer to every request already sent.
 *
 * Why not autocannon's `stop()` or `duration`: both destroy the connections with their requests
 * in flight. A worker may already have answered such a request (and counted it) when the client
 * drops it: the counts of the two sides would differ by up to one request per connection, and
 * an abandoned request is not a failed one. autocannon has no graceful stop, so `finish()` uses
 * the mechanism behind its own `maxConnectionRequests` option: each connection's request budget
 * (`responseMax`, checked before each new request) is lowered to what it has sent, so it closes
 * after its last answer.
 *
 * Why the headers: autocannon matches responses to the requests of its list by position, which
 * goes wrong after a connection is reset (a request lost with the connection shifts the rest), so
 * a response's route is read from the response itself.
 */
import http from 'node:http';
import autocannon from 'autocannon';

/** One request of the mix every connection cycles through. */
export interface LoadRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
}

export interface LoadOptions {
  readonly port: number;
  readonly connections: number;
  readonly requests: readonly LoadRequest[];
  /** A safety net: autocannon stops on its own (abruptly) after this many seconds. */
  readonly maxSeconds: number;
  /** A request unanswered for this many seconds is an error (a timeout). */
  readonly timeoutS: number;
}

/** What one load run saw, from the client's side. */
export interface LoadFigures {
  readonly seconds: number;
  readonly responses: number;
  readonly ok2xx: number;
  /** Responses with a status outside 2xx. */
  readonly non2xx: number;
  readonly non2xxByStatus: Record<string, number>;
  /** Connection errors and timeouts: requests that got no response at all. */
  readonly errors: number;
  readonly errorsByCode: Record<string, number>;
  readonly timeouts: number;
  readonly reqPerS: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number };
  /** Responses by the route and status they carry (x-route). */
  readonly byRoute: Record<string, Record<string, number>>;
  /** 2xx responses by route (x-route): what the `hits` store is compared with. */
  readonly ok2xxByRoute: Record<string, number>;
  /** 2xx responses autocannon counted that carried no x-route header (expected: 0). */
  readonly unattributed: number;
  /** Responses by the worker that sent them (x-worker). */
  readonly byWorker: Record<string, number>;
  /** `GET /` responses by worker, then by the config version they were produced with. */
  readonly configVersions: Record<string, Record<string, number>>;
  /** 'finish' when finish() ended it; 'maxSeconds' when the safety net did. */
  readonly endedBy: 'finish' | 'maxSeconds';
}

export interface Load {
  /** performance.now() when it started. */
  readonly startedAt: number;
  /** Responses received so far. */
  responses(): number;
  /**
   * Stops sending new requests, waits for the answer (or the error) of every request already
   * sent, and resolves with the figures.
   */
  finish(): Promise<LoadFigures>;
}

/** autocannon's per-connection client, the two fields finish() relies on (autocannon 9). */
interface ClientBudget {
  /** Requests sent on this connection so far. */
  readonly reqsMade: number;
  /** Set by `amount` / `maxConnectionRequests`: no request is sent once reqsMade reaches it. */
  responseMax: number | undefined;
}

function hasBudget(client: object): client is ClientBudget {
  return (
    'responseMax' in client &&
    'reqsMade' in client &&
    typeof (client as { reqsMade: unknown }).reqsMade === 'number'
  );
}

/** Starts the load; it runs until `finish()` (or `maxSeconds`). */
export function startLoad(options: LoadOptions): Load {
  const byRoute = new Map<string, Map<number, number>>();
  const byWorker = new Map<string, number>();
  const configVersions = new Map<string, Map<string, number>>();
  const errorsByCode = new Map<string, number>();
  const clients: ClientBudget[] = [];
  let responses = 0;
  let finishing = false;
  const bump = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1);

  const onResponse = (
    status: number,
    body: string,
    _c: object,
    headers?: Record<string, unknown>,
  ) => {
    responses++;
    const route = typeof headers?.['x-route'] === 'string' ? headers['x-route'] : '?';
    const worker = typeof headers?.['x-worker'] === 'string' ? headers['x-worker'] : '?';
    const statuses = byRoute.get(route) ?? new Map<number, number>();
    byRoute.set(route, bump(statuses, status));
    bump(byWorker, worker);
    if (route === '/' && status === 200) {
      const versions = configVersions.get(worker) ?? new Map<string, number>();
      configVersions.set(worker, bump(versions, `v${configVersionOf(body)}`));
    }
  };

  const startedAt = performance.now();
  let instance: autocannon.Instance | undefined;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(
      {
        url: `http://localhost:${options.port}`,
        connections: options.connections,
        duration: options.maxSeconds,
        timeout: options.timeoutS,
        // The figures are computed once every connection is done; sample often so that the end
        // is noticed within 100 ms.
        sampleInt: 100,
        requests: options.requests.map((r) => ({ ...r, onResponse })),
        setupClient: (client) => {
          if (!hasBudget(client)) {
            throw new Error('autocannon changed: its clients have no reqsMade/responseMax');
          }
          clients.push(client);
        },
      },
      (error: unknown, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('reqError', (error: { code?: string; message?: string }) => {
      bump(errorsByCode, error.code ?? error.message ?? 'unknown');
    });
  });

  return {
    startedAt,
    responses: () => responses,
    async finish() {
      if (!finishing) {
        finishing = true;
        // Each connection closes once the request it has in flight is answered.
        for (const client of clients) client.responseMax = Math.max(1, client.reqsMade);
      }
      const result = await done;
      const ok2xxByRoute: Record<string, number> = {};
      for (const [route, statuses] of byRoute) {
        for (const [status, n] of statuses) {
          if (status >= 200 && status < 300 && route !== '?') {
            ok2xxByRoute[route] = (ok2xxByRoute[route] ?? 0) + n;
          }
        }
      }
      const attributed = Object.values(ok2xxByRoute).reduce((a, b) => a + b, 0);
      const total = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
      const seconds = Math.round(performance.now() - startedAt) / 1000;
      return {
        seconds,
        responses: total,
        ok2xx: result['2xx'],
        non2xx: result.non2xx,
        non2xxByStatus: Object.fromEntries(
          Object.entries(result.statusCodeStats ?? {})
            .filter(([status]) => !status.startsWith('2'))
            .map(([status, s]) => [status, s.count ?? 0]),
        ),
        errors: result.errors,
        errorsByCode: Object.fromEntries(errorsByCode),
        timeouts: result.timeouts,
        reqPerS: Math.round(total / seconds),
        latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
        byRoute: Object.fromEntries(
          [...byRoute].map(([route, statuses]) => [route, Object.fromEntries(statuses)]),
        ),
        ok2xxByRoute,
        unattributed: result['2xx'] - attributed,
        byWorker: Object.fromEntries(byWorker),
        configVersions: Object.fromEntries(
          [...configVersions].map(([worker, versions]) => [worker, Object.fromEntries(versions)]),
        ),
        endedBy: finishing ? 'finish' : 'maxSeconds',
      };
    },
  };
}

function configVersionOf(body: string): number | '?' {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null && 'configVersion' in parsed) {
      const version = parsed.configVersion;
      if (typeof version === 'number') return version;
    }
  } catch {
    // not JSON
  }
  return '?';
}

/** What one `GET /` over a fresh connection answered. */
export interface ProbeAnswer {
  readonly worker: number;
  readonly status: number;
  readonly greeting: string;
  readonly configVersion: number;
}

/**
 * Sends `GET /` over fresh connections (the primary hands new connections to the workers in
 * turn) until each of `workers` has answered once, or `maxTries` requests were sent.
 */
export async function probeWorkers(
  port: number,
  workers: readonly number[],
  maxTries = 8 * workers.length,
): Promise<ProbeAnswer[]> {
  const answers: ProbeAnswer[] = [];
  const missing = () => workers.filter((id) => !answers.some((a) => a.worker === id));
  for (let i = 0; i < maxTries && missing().length > 0; i++) answers.push(await getRoot(port));
  return answers;
}

function getRoot(port: number): Promise<ProbeAnswer> {
  return new Promise((resolve, reject) => {
    // agent: false: a new connection for each request, closed after it.
    const req = http.get({ port, host: 'localhost', path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        try {
          const parsed = JSON.parse(body) as Partial<ProbeAnswer>;
          resolve({
            worker: Number(res.headers['x-worker']),
            status: res.statusCode ?? 0,
            greeting: String(parsed.greeting),
            configVersion: Number(parsed.configVersion),
          });
        } catch (error) {
          reject(error);
        }
      });
    });
    req.setTimeout(5_000, () => req.destroy(new Error('probe timed out')));
    req.on('error', reject);
  });
}
