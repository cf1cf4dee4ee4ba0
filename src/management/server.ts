/**
 * The management API's HTTP server (`node:http` only), in the primary: bounds every request
 * (concurrency, time, body size), checks the bearer token of every non-public endpoint, and
 * dispatches to the route table (routes.ts). Started by `startCluster` when `management` is
 * given, closed by `app.close()`.
 *
 * @module
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Contract } from '../contract.js';
import { BusError } from '../errors.js';
import type { ClusterApp } from '../supervisor/cluster.js';
import { BearerCheck } from './auth.js';
import { HttpError, readBody, sendError } from './http.js';
import { Operations, type ScaleBounds } from './operations.js';
import type { ResolvedManagementOptions } from './options.js';
import { type Route, routes } from './routes.js';
import { ClusterStats } from './stats.js';
import type { ManagementInfo, MetricsProvider } from './types.js';

/** What the server needs besides the app and its options. */
export interface ManagementHooks {
  /** The scale bounds (`POST /scale` outside them gets 409). */
  readonly bounds: () => ScaleBounds;
  /** Answers `GET /metrics`; without one, it answers 501. */
  readonly metrics?: MetricsProvider | undefined;
}

/** @internal The running management API of one cluster. */
export class ManagementServer implements ManagementInfo {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  private active = 0;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: http.Server,
    private readonly stats: ClusterStats,
    private readonly operations: Operations,
  ) {
    const address = server.address() as AddressInfo;
    this.host = address.address;
    this.port = address.port;
    this.url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/`;
  }

  /**
   * Listens on `options.host:options.port` and serves the API for `app`. Its counters (forks,
   * crashes, restarts) start now: start it before the first fork.
   * @throws never synchronously; rejects with {@link BusError} `INVALID_ARGUMENT` when it cannot
   *   listen (the port is taken, the host is not an address of this machine).
   */
  static async start(
    app: ClusterApp<Contract>,
    options: ResolvedManagementOptions,
    hooks: ManagementHooks,
  ): Promise<ManagementServer> {
    const operations = new Operations(app);
    const stats = new ClusterStats(app, hooks.bounds, operations);
    const auth = new BearerCheck(options.token);
    const table = routes({
      stats,
      operations,
      bounds: hooks.bounds,
      metrics: hooks.metrics,
      refuseIfClosing: () => {
        if (app.isClosing)
          throw new HttpError(503, 'the cluster is closing', { 'Retry-After': '1' });
      },
    });
    let self: ManagementServer | undefined;
    const server = http.createServer(
      {
        // Slow headers: Node answers 408 itself, checked this often.
        headersTimeout: options.requestTimeoutMs,
        requestTimeout: options.requestTimeoutMs + 1_000,
        connectionsCheckingInterval: Math.min(1_000, options.requestTimeoutMs),
      },
      (req, res) => self?.serve(req, res, table, auth, options),
    );
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      stats.close();
      operations.close();
      const e = error as NodeJS.ErrnoException;
      throw new BusError(
        'INVALID_ARGUMENT',
        `startCluster: the management API cannot listen on ${options.host}:${options.port}: ${e.code ?? e.message}`,
        { cause: error },
      );
    }
    self = new ManagementServer(server, stats, operations);
    return self;
  }

  private serve(
    req: IncomingMessage,
    res: ServerResponse,
    table: readonly Route[],
    auth: BearerCheck,
    options: ResolvedManagementOptions,
  ): void {
    if (this.active >= options.maxConcurrentRequests) {
      sendError(
        res,
        new HttpError(
          503,
          `too many requests at once (maxConcurrentRequests ${options.maxConcurrentRequests}); retry later`,
          { 'Retry-After': '1', Connection: 'close' },
        ),
      );
      return;
    }
    this.active++;
    const timer = setTimeout(() => {
      if (res.headersSent) {
        req.destroy(); // an answer had begun: it cannot be finished in time
        return;
      }
      sendError(
        res,
        new HttpError(
          408,
          `the request was not received and answered within requestTimeoutMs (${options.requestTimeoutMs} ms)`,
          { Connection: 'close' },
        ),
      );
      // Once the 408 is out, the connection goes (its body may still be arriving).
      if (res.writableFinished) req.destroy();
      else res.once('finish', () => req.destroy());
    }, options.requestTimeoutMs);
    res.once('close', () => {
      clearTimeout(timer);
      this.active--;
    });
    this.dispatch(req, res, table, auth, options).catch((error: unknown) => {
      if (!(error instanceof HttpError)) {
        const message = error instanceof Error ? error.message : String(error);
        sendError(res, new HttpError(500, `internal error: ${message}`));
        return;
      }
      sendError(res, error);
      // An unread body is not waited for: the connection closes after the answer.
      if (error.status === 413) res.once('finish', () => req.destroy());
    });
  }

  private async dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    table: readonly Route[],
    auth: BearerCheck,
    options: ResolvedManagementOptions,
  ): Promise<void> {
    const path = pathOf(req.url);
    let params: string[] = [];
    const route = table.find((r) => {
      const match = r.pattern.exec(path);
      if (match !== null) params = match.slice(1);
      return match !== null;
    });
    if (route === undefined || !route.public) authorize(auth, req.headers.authorization);
    if (route === undefined) throw new HttpError(404, `no endpoint ${path}`);
    // HEAD is GET without the body (Node leaves the body out).
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? '');
    const handler = route.methods[method];
    if (handler === undefined) {
      const methods = Object.keys(route.methods);
      const allow = (methods.includes('GET') ? [...methods, 'HEAD'] : methods).join(', ');
      throw new HttpError(405, `${req.method} is not allowed on ${path}; use ${allow}`, {
        Allow: allow,
      });
    }
    await handler({ req, res, params, body: () => readBody(req, options.maxBodyBytes) });
  }

  /** Stops listening and ends every connection; idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.stats.close();
      this.operations.close();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }
}

/** The path of a request URL (origin-form `/a?b`, or absolute-form), without its query. */
function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  if (raw.startsWith('/')) return raw.split(/[?#]/, 1)[0]!;
  try {
    return new URL(raw).pathname;
  } catch {
    return raw;
  }
}

/** Throws 401 or 403 unless `header` carries the token. */
function authorize(auth: BearerCheck, header: string | undefined): void {
  switch (auth.check(header)) {
    case 'ok':
      return;
    case 'unset':
      throw new HttpError(
        403,
        'the management API has no token: set management.token (or CLUSTER_API_TOKEN) to use this endpoint',
      );
    case 'missing':
      throw new HttpError(401, 'missing bearer token: send Authorization: Bearer <token>', {
        'WWW-Authenticate': 'Bearer realm="clusterbus"',
      });
    case 'wrong':
      throw new HttpError(401, 'wrong bearer token', {
        'WWW-Authenticate': 'Bearer realm="clusterbus", error="invalid_token"',
      });
  }
}
