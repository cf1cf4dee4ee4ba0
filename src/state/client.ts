/**
 * Both sides: one process's state client, the same in the hub and in workers. It makes the store
 * proxies (store.ts), runs this process's watches and numbers its lock acquires (lease.ts), and
 * speaks to the hub's host only through its extension context: `call('primary', verb)`,
 * `send(HUB_ID, verb)` and `on('change')`. The hub's own calls and messages go through its local
 * loop, so nothing here depends on the side it runs on.
 *
 * @module
 */

import type { Contract } from '../contract.js';
import { type ExtensionContext, HUB_ID } from '../core/extension.js';
import type { CallOptions, Origin } from '../core/types.js';
import { BusError } from '../errors.js';
import { type ChangeMessage, parseWire, Res, Verb } from './protocol.js';
import { badOutput, type StoreBackend, StoreClient, type WatchEntry } from './store.js';
import type { StoreCallOptions, StoreChange } from './types.js';

/** One process's state client: its stores, its watches, its acquire ids. */
export class StateClient implements StoreBackend {
  private readonly stores = new Map<string, StoreClient>();
  readonly watches = new Map<number, WatchEntry>();
  readonly lanes = new Map<string, Promise<void>>();
  private nextWatchId = 1;
  private nextAcquireId = 1;
  private closed = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly ctx: ExtensionContext,
    private readonly contract: Contract,
  ) {
    this.unsubscribe = ctx.on(Verb.change, (message, source) => this.onChange(message, source));
  }

  /** Whether the bus is closed (see {@link close}). */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * The proxy of store `name` (one per name).
   * @throws {@link BusError} `INVALID_ARGUMENT` for a name not in the contract.
   */
  store(name: string): StoreClient {
    let store = this.stores.get(name);
    if (store === undefined) {
      const schema = this.contract.stores.get(name);
      if (schema === undefined) {
        throw new BusError('INVALID_ARGUMENT', `store: '${name}' is not a store of the contract`);
      }
      store = new StoreClient(this, name, schema);
      this.stores.set(name, store);
    }
    return store;
  }

  watchId(): number {
    return this.nextWatchId++;
  }

  /** A lock acquire id, unique in this process. */
  acquireId(): number {
    return this.nextAcquireId++;
  }

  call(verb: string, input: unknown, options: StoreCallOptions = {}): Promise<unknown> {
    const call: { timeoutMs?: number; signal?: AbortSignal } = {};
    if (options.timeoutMs !== undefined) call.timeoutMs = options.timeoutMs;
    if (options.signal !== undefined) call.signal = options.signal;
    return this.ctx.call('primary', verb, input, call as CallOptions);
  }

  /** In order with this process's calls to the hub. */
  notify(verb: string, payload: unknown): void {
    this.ctx.send(HUB_ID, verb, payload);
  }

  report(error: BusError): void {
    this.ctx.report(error);
  }

  /** The bus closed: its watches end. */
  close(): void {
    this.closed = true;
    this.unsubscribe();
    this.watches.clear();
  }

  private onChange(raw: unknown, source: Origin): void {
    if (source !== 'primary') {
      // Changes come from the hub's host only; in the hub, a worker's is forged.
      this.report(
        new BusError(
          'FORBIDDEN',
          `a store change from worker ${source} refused: changes come from the primary's host`,
        ),
      );
      return;
    }
    let message: ChangeMessage;
    try {
      message = parseWire(Res.change, raw, 'PROTOCOL', 'store change');
    } catch (error) {
      this.report(error as BusError);
      return;
    }
    for (const id of message.w) {
      const watch = this.watches.get(id);
      if (watch === undefined) continue; // stopped meanwhile
      let change: StoreChange<unknown>;
      if (message.o === 'set') {
        const parsed = watch.store.schema.safeParse(message.v);
        if (!parsed.success) {
          this.report(badOutput(watch.store.name, message.k, parsed.error));
          continue;
        }
        change = { key: message.k, op: 'set', value: parsed.data, revision: message.r };
      } else {
        change = { key: message.k, op: message.o, revision: message.r };
      }
      try {
        const result: unknown = watch.onChange(change);
        if (result instanceof Promise) {
          result.catch((error: unknown) => this.watcherFailed(watch.store.name, error));
        }
      } catch (error) {
        this.watcherFailed(watch.store.name, error);
      }
    }
  }

  private watcherFailed(store: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.report(
      new BusError('SUBSCRIBER_FAILED', `a watcher of store '${store}' threw: ${message}`, {
        cause: error,
      }),
    );
  }
}
