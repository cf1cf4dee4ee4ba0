/**
 * Helpers of the management API suites: a fixture cluster with the API on, and HTTP requests to
 * it (with fetch, and over a raw socket for what fetch cannot send: a slow or endless body).
 */
import net from 'node:net';
import type { ClusterApp, StartClusterOptions } from '../../src/index.js';
import { contract } from './fixtures/management-contract.js';
import { fixture, start } from './fixtures/supervisor-helpers.js';

export type App = ClusterApp<typeof contract>;
export const WORKER = fixture('management-worker.ts');
export const TOKEN = 'management-test-token-0123456789';

/** Starts 2 fixture workers with the management API on an ephemeral loopback port. */
export function startManaged(
  options: Partial<StartClusterOptions<typeof contract>> = {},
  management: Record<string, unknown> = {},
): Promise<App> {
  return start(contract, WORKER, {
    health: { intervalMs: 200 },
    drainTimeoutMs: 2_000,
    ...options,
    management: { port: 0, token: TOKEN, ...management } as { port: number },
  });
}

/** A response, its body parsed as JSON when it is JSON. */
export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test bodies are read field by field
  readonly body: any;
}

/** Requests `path` of the app's management API. */
export async function request(
  app: App,
  path: string,
  init: {
    method?: string;
    token?: string | null;
    body?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  const token = init.token === undefined ? TOKEN : init.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(new URL(path, app.management!.url), {
    method: init.method ?? 'GET',
    headers,
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body };
}

/**
 * Sends `head` (request line and headers, CRLF-terminated, without the blank line) and `body` on
 * a raw socket (with `complete: false`, only the headers, never ended), and resolves with the status of the answer (or null if the server closed the
 * connection without one) and how long it took. The socket is ended either way.
 */
export function rawRequest(
  app: App,
  head: string,
  body = '',
  timeoutMs = 15_000,
  /** false: the blank line that ends the headers is never sent. */
  complete = true,
): Promise<{ status: number | null; text: string; ms: number; socket: net.Socket }> {
  const { port, host } = app.management!;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect(port, host);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    const done = () => {
      clearTimeout(timer);
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({
        status: match === null ? null : Number(match[1]),
        text,
        ms: performance.now() - started,
        socket,
      });
      socket.destroy();
    };
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', () => {});
    socket.write(complete ? `${head}\r\n\r\n${body}` : `${head}\r\n`);
  });
}

/** Opens a request whose body never completes; resolves once written. Destroy the socket after. */
export function hangingRequest(app: App, path: string): Promise<net.Socket> {
  const { port, host } = app.management!;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host, () => {
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"wor`,
        () => resolve(socket),
      );
    });
    socket.on('error', reject);
  });
}
