/**
 * The seam between the bus core and the protocols built on it. An extension (the shared store
 * and locks, health checks, config, drain, ...) is a name and an `install` function: it gets an
 * {@link ExtensionContext} with one signature on both sides of the cluster (the hub, which is the
 * primary, and a worker), and returns its API and its close. The core knows no extension by name.
 *
 * System names are the extension's own: `ctx.handle('get', …)` in extension `state` serves
 * `$state.get`. Who may call a handler is declared where it is registered: by default only the
 * hub; `callers: 'any'` lets workers call the hub's handler too. The hub never routes a `$…`
 * frame between workers, so that boundary is structural.
 *
 * @module
 */

import type { BusError } from '../errors.js';
import type { CallOptions, Origin, PeerId, SystemHandler, Target } from './types.js';

export type { PeerId } from './types.js';

/**
 * Which side of the cluster a bus is: the hub (the primary) or a worker.
 * @category RPC and pub/sub
 */
export type Side = 'hub' | 'worker';

/** The hub's {@link PeerId}. */
export const HUB_ID: PeerId = 0;

/** Options of {@link ExtensionContext.handle}. */
export interface HandleOptions {
  /**
   * Who may call it: `'hub'` (the primary only; a call from a worker is refused with
   * `FORBIDDEN`), or `'any'` (workers may call the hub's handler; in a worker, only the hub can
   * reach a handler anyway).
   * @default 'hub'
   */
  readonly callers?: 'hub' | 'any';
}

/** The other processes, as the hub sees them (in a worker: the hub only). */
export interface Peers {
  /** The ids of the peers that are ready (routable), ascending. In a worker: `[HUB_ID]`. */
  ids(): PeerId[];
  /**
   * Calls `listener` once a peer's bus is gone (exit, disconnect, or its bus closed), after the
   * calls routed to it were settled. Returns the remover.
   */
  onGone(listener: (id: PeerId) => void): () => void;
  /** Calls in flight to peer `id` (sent or forwarded by this process, not yet settled). */
  inFlight(id: PeerId): number;
  /** Marks peer `id` as draining (or not): `'any'` calls avoid it. Hub only; a no-op in a worker. */
  setDraining(id: PeerId, draining: boolean): void;
}

/** What an extension gets from the bus it is installed on. The same on both sides. */
export interface ExtensionContext {
  /** The extension's name: the first part of its system names (`$<name>.<verb>`). */
  readonly name: string;
  /** Which side this bus is. */
  readonly side: Side;
  /** Who this process is: `'primary'` or its worker id. */
  readonly self: Origin;
  /** Serves `$<name>.<verb>` in this process. Returns the remover. */
  handle(verb: string, handler: SystemHandler, options?: HandleOptions): () => void;
  /**
   * Calls `$<name>.<verb>` on `target`, with the bus's timeout, abort and exit handling. A call to
   * this process itself (the hub calling `'primary'`) goes through the local loop, in order with
   * its other local calls. A `BusError` thrown by the handler arrives with its own code.
   */
  call(target: Target, verb: string, input?: unknown, options?: CallOptions): Promise<unknown>;
  /**
   * Sends the one-way message `$<name>.<verb>` to peer `to` (a worker id from the hub; `HUB_ID`
   * from a worker, or from the hub to itself, delivered through the local loop). In order with
   * the calls this process sends to the same peer. Returns false if `to` is not connected.
   */
  send(to: PeerId, verb: string, payload?: unknown): boolean;
  /** Listens to the one-way message `$<name>.<verb>`. Returns the remover. */
  on(verb: string, listener: (payload: unknown, source: Origin) => void): () => void;
  /** The other processes. */
  readonly peers: Peers;
  /** Reports what has nobody to reject, on the bus's `error` event (aggregated). */
  report(error: BusError): void;
  /** Resolves once the bus has closed. */
  readonly closed: Promise<void>;
}

/** What {@link Extension.install} returns. */
export interface Installed<Api> {
  /** The extension's API, as the composition root exposes it. */
  readonly api: Api;
  /**
   * Hub side: this extension's part of worker `id`'s welcome (JSON, or what the codec carries),
   * sent under the extension's name; `undefined` for none.
   */
  welcome?(id: PeerId): unknown;
  /**
   * Worker side: this extension's part of the welcome (`undefined` when the hub sent none),
   * before `connect()` resolves. A returned error fails `connect()` with it.
   */
  welcomed?(data: unknown): BusError | undefined;
  /** Ends what the extension runs (timers, listeners). The bus closes after it. */
  close?(): void;
}

/** A protocol built on the bus core. */
export interface Extension<Api> {
  /** Its name: `$<name>.<verb>` are its system names, and its key in the handshake map. */
  readonly name: string;
  /** Wires the extension onto one bus. Called once per bus, before its handshake. */
  install(ctx: ExtensionContext): Installed<Api>;
}
