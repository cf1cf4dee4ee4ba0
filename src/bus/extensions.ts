/**
 * The extensions installed on a bus: giving each its {@link ExtensionContext} (its system names
 * `$<name>.<verb>`, who may call its handlers), keeping what it returns for the handshake, its
 * API and its close, and closing them, last installed first.
 *
 * @module
 */
import type {
  Extension,
  ExtensionContext,
  HandleOptions,
  Installed,
  PeerId,
  Peers,
  Side,
} from '../core/extension.js';
import type {
  CallOptions,
  Origin,
  SystemHandler,
  SystemSubscriber,
  Target,
} from '../core/types.js';
import { BusError, toBusError } from '../errors.js';
import { describeOrigin } from './names.js';

/** The bus as its extensions' contexts use it: who it is, and its system protocol. */
export interface ExtensionBus {
  readonly side: Side;
  readonly self: Origin;
  readonly closed: Promise<void>;
  systemHandle(name: string, handler: SystemHandler): () => void;
  systemCall(name: string, target: Target, input: unknown, options?: CallOptions): Promise<unknown>;
  systemSubscribe(name: string, subscriber: SystemSubscriber): () => void;
}

/** What the bus keeps from its users but gives its extensions. */
export interface ExtensionPorts {
  /** The other processes, as the bus sees them. */
  peers(): Peers;
  /** Sends system event `topic` (`$…`) to peer `to`; false when `to` is not connected. */
  send(to: PeerId, topic: string, payload: unknown): boolean;
  /** Reports what has nobody to reject (the bus's `error` event, aggregated). */
  report(error: BusError): void;
}

/** The extensions of one bus, by name, in install order. */
export class Extensions {
  /** Installed extensions, by name, in install order. */
  readonly installed = new Map<string, Installed<unknown>>();
  /** Their APIs, by name, kept after close: a closed bus's API rejects with `CLOSED` itself. */
  private readonly apis = new Map<string, unknown>();

  constructor(
    private readonly bus: ExtensionBus,
    private readonly ports: ExtensionPorts,
  ) {}

  /**
   * Installs `extension`: gives it its context and keeps what it returns. Returns its API.
   * @throws a `BusError` `INVALID_ARGUMENT` for a second extension of the same name.
   */
  install<Api>(extension: Extension<Api>): Api {
    const name = extension.name;
    if (this.installed.has(name)) {
      throw new BusError('INVALID_ARGUMENT', `extension '${name}' is already installed`);
    }
    const installed = extension.install(this.contextFor(name));
    this.installed.set(name, installed);
    this.apis.set(name, installed.api);
    return installed.api;
  }

  /** The API of extension `name`, if one was installed (also after close). */
  api(name: string): unknown {
    return this.apis.get(name);
  }

  /** Closes every installed extension, last installed first; reports what throws. */
  close(): void {
    for (const [name, installed] of [...this.installed].reverse()) {
      try {
        installed.close?.();
      } catch (error) {
        this.ports.report(toBusError(error, 'PROTOCOL', `extension '${name}' failed to close`));
      }
    }
    this.installed.clear();
  }

  private contextFor(name: string): ExtensionContext {
    const prefix = `$${name}.`;
    const bus = this.bus;
    const ports = this.ports;
    return {
      name,
      side: bus.side,
      self: bus.self,
      handle: (verb: string, handler: SystemHandler, options?: HandleOptions) => {
        const full = prefix + verb;
        if (options?.callers === 'any') return bus.systemHandle(full, handler);
        return bus.systemHandle(full, (input, context) => {
          if (context.caller !== 'primary') {
            throw new BusError(
              'FORBIDDEN',
              `'${full}' is the primary's own: ${describeOrigin(context.caller)} may not call it`,
            );
          }
          return handler(input, context);
        });
      },
      call: (target: Target, verb: string, input?: unknown, options?: CallOptions) =>
        bus.systemCall(prefix + verb, target, input, options),
      send: (to: PeerId, verb: string, payload?: unknown) => ports.send(to, prefix + verb, payload),
      on: (verb: string, listener: SystemSubscriber) =>
        bus.systemSubscribe(prefix + verb, listener),
      peers: ports.peers(),
      report: (error: BusError) => ports.report(error),
      closed: bus.closed,
    };
  }
}
