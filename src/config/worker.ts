/**
 * The worker's side of the config extension: the current config (from the welcome, before
 * `connect()` resolves), change handlers, and applying versioned updates in order.
 *
 * @module
 */
import type { ConfigValue, Contract, Schema } from '../contract.js';
import { BusError, summarizeIssues, toIssues, toRemoteError } from '../errors.js';
import { type ConfigChangeHandler, ConfigMessageSchema } from './types.js';

/**
 * A worker's view of the cluster's config, found as `bus.config`. `current` is typed from the
 * contract's config schema and is in place before `connect()` resolves.
 * @category Config
 */
export class WorkerConfig<C extends Contract> {
  private value: unknown;
  private versionValue = 0;
  private readonly handlers: ConfigChangeHandler<C>[] = [];
  /** Updates are applied one at a time, in arrival (= version) order. */
  private queue: Promise<unknown> = Promise.resolve();

  /** @internal Made by the config extension's worker side. */
  constructor(
    private readonly schema: Schema | undefined,
    private readonly where: () => string,
  ) {}

  /** The config this worker runs, parsed by the contract's schema (`undefined` without one). */
  get current(): ConfigValue<C> {
    return this.value as ConfigValue<C>;
  }

  /** Its version: 1 for the initial config, +1 per update (0 without a config schema). */
  get version(): number {
    return this.versionValue;
  }

  /**
   * Registers a handler called before a new config takes effect, with the new and the previous
   * value. Handlers run one after another in registration order; the first that throws or rejects
   * refuses the change (the later ones are not called), the worker keeps its previous config, and
   * `app.config.update()` reports this worker as `refused` with the error. Since earlier handlers
   * may already have acted, register one handler that checks before it applies.
   *
   * @returns a function that removes the handler.
   * @throws {@link BusError} `INVALID_ARGUMENT` (synchronously) for a handler that is not a function.
   */
  onChange(handler: ConfigChangeHandler<C>): () => void {
    if (typeof handler !== 'function') {
      throw new BusError('INVALID_ARGUMENT', 'config.onChange: the handler must be a function');
    }
    this.handlers.push(handler);
    return () => {
      const i = this.handlers.indexOf(handler);
      if (i >= 0) this.handlers.splice(i, 1);
    };
  }

  /**
   * @internal Sets the initial config from the welcome's part (`{ version, value }`, or
   * `undefined` when the hub sent none). Throws `VALIDATION` when the value fails this worker's
   * schema, or when the contract has a config schema and none arrived.
   */
  init(welcome: unknown): void {
    if (this.schema === undefined) return;
    const { version, value: raw } = (welcome ?? {}) as { version?: unknown; value?: unknown };
    if (typeof version !== 'number') {
      throw new BusError(
        'VALIDATION',
        `${this.where()}: the contract has a config schema but the primary sent no config (was it started with the same contract?)`,
      );
    }
    this.value = this.parse(raw, version);
    this.versionValue = version;
  }

  /** @internal Applies a `$config.apply` message; resolves with the version now in effect. */
  apply(input: unknown): Promise<{ version: number }> {
    const run = this.queue.then(() => this.applyNow(input));
    this.queue = run.catch(() => {});
    return run;
  }

  private async applyNow(input: unknown): Promise<{ version: number }> {
    const message = ConfigMessageSchema.safeParse(input);
    if (!message.success) {
      throw new BusError('PROTOCOL', `${this.where()}: a malformed config message`);
    }
    if (this.schema === undefined) {
      throw new BusError('INVALID_ARGUMENT', `${this.where()}: the contract has no config schema`);
    }
    const { v, value } = message.data;
    // A replacement welcomed with a newer version may still see an older update: ignore it.
    if (v <= this.versionValue) return { version: this.versionValue };
    const next = this.parse(value, v);
    const previous = this.value;
    const info = { version: v, previousVersion: this.versionValue };
    for (const handler of [...this.handlers]) {
      try {
        await handler(next as ConfigValue<C>, previous as ConfigValue<C>, info);
      } catch (error) {
        throw toRemoteError(error, `a config.onChange handler on ${this.where()} (version ${v})`);
      }
    }
    this.value = next;
    this.versionValue = v;
    return { version: v };
  }

  private parse(raw: unknown, version: number): unknown {
    const parsed = this.schema!.safeParse(raw);
    if (parsed.success) return parsed.data;
    throw new BusError(
      'VALIDATION',
      `${this.where()}: config version ${version} fails the config schema: ${summarizeIssues(parsed.error.issues, 'config')}`,
      { issues: toIssues(parsed.error.issues) },
    );
  }
}
