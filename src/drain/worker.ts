/**
 * The worker's side of the drain extension: the app's drain handlers (`bus.onDrain`), a graceful
 * close of HTTP servers that does not race keep-alive clients (`bus.closeOnDrain(server)`), and
 * waiting for the worker's own calls to settle, then closing its thread pools, before it tells the
 * hub it is drained.
 *
 * @module
 */
import type * as http from 'node:http';
import net from 'node:net';
import { BusError, toRemoteError } from '../errors.js';
import { closePools } from '../threads/registry.js';
import { sleep } from '../util/sleep.js';
import type { CloseOnDrainOptions, DrainableServer, DrainHandler } from './types.js';

/** How often a draining worker looks at its in-flight calls, in ms. */
const POLL_MS = 10;

/** @internal The worker's drain state, the drain extension's worker API. */
export class WorkerDrain {
  private readonly handlers = new Set<DrainHandler>();
  private running: Promise<void> | undefined;

  constructor(
    /** Calls in flight on the bus (served and awaited), the `$drain.start` call included. */
    private readonly inFlight: () => number,
    private readonly report: (error: BusError) => void,
  ) {}

  /** Whether the primary has asked this worker to drain. */
  get draining(): boolean {
    return this.running !== undefined;
  }

  /** See `WorkerBus.onDrain`. */
  onDrain(handler: DrainHandler): () => void {
    if (typeof handler !== 'function') {
      throw new BusError('INVALID_ARGUMENT', 'onDrain: the handler must be a function');
    }
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** See `WorkerBus.closeOnDrain`. */
  closeOnDrain(server: DrainableServer, options: CloseOnDrainOptions = {}): () => void {
    const idleGraceMs = options.idleGraceMs ?? 1_000;
    if (typeof idleGraceMs !== 'number' || !(idleGraceMs > 0)) {
      throw new BusError('INVALID_ARGUMENT', 'closeOnDrain: idleGraceMs must be a number > 0');
    }
    if (typeof server?.closeIdleConnections !== 'function') {
      throw new BusError('INVALID_ARGUMENT', 'closeOnDrain: server must be an http(s).Server');
    }
    let draining = false;
    // Runs before the app's own listener, so the header is in place before it answers.
    const onRequest = (_req: http.IncomingMessage, res: http.ServerResponse) => {
      if (draining) res.setHeader('connection', 'close');
    };
    server.prependListener('request', onRequest);
    const off = this.onDrain(() => {
      draining = true;
      return closeGracefully(server, idleGraceMs);
    });
    return () => {
      off();
      server.off('request', onRequest);
    };
  }

  /**
   * @internal Runs every drain handler (concurrently), then waits for the calls in flight on the
   * bus to settle (all but the `$drain.start` call itself). Idempotent.
   */
  drain(): Promise<void> {
    this.running ??= (async () => {
      await Promise.all(
        [...this.handlers].map(async (handler) => {
          try {
            await handler();
          } catch (error) {
            this.report(toRemoteError(error, 'a drain handler'));
          }
        }),
      );
      while (this.inFlight() > 1) await sleep(POLL_MS);
      // The worker's thread pools (clusterbus/threads) close last: its own calls may use them.
      await closePools();
    })();
    return this.running;
  }
}

/**
 * Stops accepting connections without Node's `server.close()` habit of destroying idle
 * keep-alive sockets at once (a client may be writing its next request on one: it would get
 * ECONNRESET). Responses from now on carry `Connection: close`, so each client closes its
 * connection after its next response; connections idle for `idleGraceMs` are closed. Resolves
 * when every connection has ended.
 */
function closeGracefully(server: DrainableServer, idleGraceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    const sweep = setInterval(() => server.closeIdleConnections(), idleGraceMs);
    sweep.unref();
    net.Server.prototype.close.call(server, () => {
      clearInterval(sweep);
      resolve();
    });
  });
}
