/**
 * The management API's endpoints: one table of paths and methods, each with its handler and
 * whether it is public (only `GET /health` and the dashboard's static files are).
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { ASSETS, DASHBOARD_CSP, readAsset } from './assets.js';
import { HttpError, send, sendJson } from './http.js';
import { type Operations, type ScaleBounds, scaleConflict } from './operations.js';
import type { ClusterStats } from './stats.js';
import type { MetricsProvider } from './types.js';

/** What a handler gets. */
export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The path's captured parts (e.g. a restart id). */
  readonly params: readonly string[];
  /** Reads the request body within `maxBodyBytes` (413 beyond). */
  body(): Promise<Buffer>;
}

/** What the handlers work with. */
export interface RouteDeps {
  readonly stats: ClusterStats;
  readonly operations: Operations;
  readonly bounds: () => ScaleBounds;
  readonly metrics: MetricsProvider | undefined;
  /** Throws 503 once the cluster is closing (no new operation then). */
  refuseIfClosing(): void;
}

type Handler = (ctx: RouteContext) => Promise<void> | void;

/** One path of the API. */
export interface Route {
  readonly pattern: RegExp;
  /** Served without a token. */
  readonly public: boolean;
  readonly methods: Readonly<Record<string, Handler>>;
}

/** The body of `POST /scale`. */
export const ScaleBody = z.strictObject({ workers: z.number().int().positive() });

/** The routes, matched against the path (the query is ignored). */
export function routes(deps: RouteDeps): readonly Route[] {
  const staticFile = (path: string): Handler => {
    const asset = ASSETS[path]!;
    return async ({ res }) => {
      const content = await readAsset(asset);
      send(res, 200, asset.contentType, content, {
        'Content-Security-Policy': DASHBOARD_CSP,
        'X-Frame-Options': 'DENY',
        'Referrer-Policy': 'no-referrer',
      });
    };
  };
  const assets: Route[] = Object.keys(ASSETS).map((path) => ({
    pattern: new RegExp(`^${path.replace(/[.]/g, '\\.')}$`),
    public: true,
    methods: { GET: staticFile(path) },
  }));
  return [
    ...assets,
    {
      // Browsers ask for it; there is none (and the answer needs no token).
      pattern: /^\/favicon\.ico$/,
      public: true,
      methods: { GET: ({ res }) => void res.writeHead(204).end() },
    },
    {
      pattern: /^\/health$/,
      public: true,
      methods: {
        GET: ({ res }) => {
          const body = deps.stats.health();
          sendJson(res, body.status === 'ok' ? 200 : 503, body);
        },
      },
    },
    {
      pattern: /^\/stats$/,
      public: false,
      methods: { GET: ({ res }) => sendJson(res, 200, deps.stats.stats()) },
    },
    {
      pattern: /^\/restart$/,
      public: false,
      methods: {
        POST: async ({ res, body }) => {
          await body();
          deps.refuseIfClosing();
          const record = deps.operations.restart();
          sendJson(res, 202, record, { Location: `/restart/${record.id}` });
        },
      },
    },
    {
      pattern: /^\/restart\/([^/]+)$/,
      public: false,
      methods: {
        GET: ({ res, params }) => {
          const record = deps.operations.restartById(params[0]!);
          if (record === undefined) throw new HttpError(404, `no restart with id '${params[0]}'`);
          sendJson(res, 200, record);
        },
      },
    },
    {
      pattern: /^\/scale$/,
      public: false,
      methods: {
        POST: async ({ res, body }) => {
          const count = parseScale(await body());
          deps.refuseIfClosing();
          const conflict = scaleConflict(count, deps.bounds());
          if (conflict !== undefined) {
            throw new HttpError(
              409,
              `${conflict}: the worker count is unchanged`,
              {},
              {
                ...deps.bounds(),
              },
            );
          }
          sendJson(res, 202, deps.operations.scale(count));
        },
      },
    },
    {
      pattern: /^\/metrics$/,
      public: false,
      methods: {
        GET: async ({ res }) => {
          if (deps.metrics === undefined) {
            throw new HttpError(
              501,
              'metrics are not available: install the optional peer dependency prom-client (npm install prom-client)',
            );
          }
          const answer = await deps.metrics();
          send(res, answer.status, answer.contentType, answer.body);
        },
      },
    },
  ];
}

/** The worker count of a `POST /scale` body; 400 with zod's issues when it is not one. */
function parseScale(raw: Buffer): number {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new HttpError(
      400,
      'the body is not JSON: send {"workers": n}',
      {},
      {
        issues: [{ code: 'invalid_json', path: [], message: (error as Error).message }],
      },
    );
  }
  const parsed = ScaleBody.safeParse(value);
  if (!parsed.success) {
    throw new HttpError(
      400,
      'the body must be {"workers": n} with n a positive integer',
      {},
      { issues: parsed.error.issues },
    );
  }
  return parsed.data.workers;
}
