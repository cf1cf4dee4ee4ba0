/**
 * The calling side of a bus: the checks a call passes before it is sent, encoding its input, and
 * reading what comes back (decoded, then validated against the method's output schema).
 *
 * @module
 */
import type { Contract } from '../contract.js';
import type { CallAllResult, CallOptions, Target } from '../core/types.js';
import { BusError, summarizeIssues, toBusError, toIssues } from '../errors.js';
import { decode, encode } from '../protocol/codec.js';
import type { Encoded, GatherItem } from '../protocol/envelope.js';
import { checkDurationMs } from '../util/duration.js';
import { checkTarget, describeTarget, isSystemName } from './names.js';
import { type BusObserver, OK_CODE } from './observe.js';
import type { ResolvedBusOptions, ResolvedCallOptions } from './options.js';
import { atCaller } from './stacks.js';

/** Sends a request and settles with its encoded result (the bus's routing). */
export type Route = (
  target: Target,
  method: string,
  payload: Encoded,
  options: ResolvedCallOptions,
) => Promise<Encoded>;

/** Sends a request to every worker and settles with one item per worker. */
export type Gather = (
  method: string,
  payload: Encoded,
  options: ResolvedCallOptions,
) => Promise<GatherItem[]>;

/** The checks, the encoding and the decoding of one bus's calls. */
export class Caller {
  private readonly callTimeoutMs: number;
  private readonly maxPayloadBytes: number;
  private readonly maxDepth: number;

  constructor(
    private readonly bus: { readonly isClosed: boolean },
    private readonly contract: Contract,
    options: ResolvedBusOptions,
    private readonly observer: BusObserver,
  ) {
    this.callTimeoutMs = options.callTimeoutMs;
    this.maxPayloadBytes = options.maxPayloadBytes;
    this.maxDepth = options.maxDepth;
  }

  /**
   * `bus.call`: checks, encodes, routes, decodes and validates the result; counts it. Rejects
   * with a `BusError` whose stack names `site` when given.
   */
  async call(
    route: Route,
    target: Target,
    method: string,
    args: readonly unknown[],
    site: Error | undefined,
  ): Promise<unknown> {
    const started = this.observer.started();
    try {
      const options = this.prepare('call', method, args[1] as CallOptions | undefined);
      checkTarget(target);
      const result = await route(target, method, this.encode(args[0]), options);
      const output = this.decodeResult(method, result, target);
      this.observer.settled(method, OK_CODE, started);
      return output;
    } catch (error) {
      const failed = atCaller(toBusError(error, 'INVALID_ARGUMENT'), site);
      this.observer.settled(method, failed.code, started);
      throw failed;
    }
  }

  /** A system call (`$…`): encoded, routed and decoded, not validated (see `bus.systemCall`). */
  async systemCall(
    route: Route,
    name: string,
    target: Target,
    input: unknown,
    options: CallOptions | undefined,
    site: Error | undefined,
  ): Promise<unknown> {
    let result: Encoded;
    try {
      const resolved = this.prepareSystem(name, options);
      result = await route(target, name, this.encode(input), resolved);
    } catch (error) {
      throw atCaller(toBusError(error, 'INVALID_ARGUMENT'), site);
    }
    return decode(result);
  }

  /** `bus.callAll`: as {@link call}, with one settled result per worker. */
  async callAll(
    gather: Gather,
    method: string,
    args: readonly unknown[],
    site: Error | undefined,
  ): Promise<CallAllResult<unknown>[]> {
    const started = this.observer.started();
    let items: GatherItem[];
    try {
      const options = this.prepare('callAll', method, args[1] as CallOptions | undefined);
      items = await gather(method, this.encode(args[0]), options);
    } catch (error) {
      const failed = atCaller(toBusError(error, 'INVALID_ARGUMENT'), site);
      this.observer.settled(method, failed.code, started);
      throw failed;
    }
    const results = items.map((item) => this.settleItem(method, item));
    this.observer.settledAll(method, results, started);
    return results;
  }

  /**
   * Checks a call (`what`: `call`, `callAll`) of `method` before it is sent: the bus is open, the
   * method is the contract's, the options are well formed. Returns them defaulted.
   * @throws a `BusError` `CLOSED` or `INVALID_ARGUMENT`.
   */
  prepare(what: string, method: string, options: CallOptions | undefined): ResolvedCallOptions {
    if (this.bus.isClosed) throw new BusError('CLOSED', `${what} '${method}': the bus is closed`);
    const def = this.contract.methods.get(method);
    if (def === undefined || def.stream !== undefined) {
      throw new BusError(
        'INVALID_ARGUMENT',
        def === undefined
          ? `${what}: '${method}' is not a method of the contract`
          : `${what}: '${method}' is a stream method: use bus.stream`,
      );
    }
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new BusError('INVALID_ARGUMENT', `${what}: options must be an object`);
    }
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new BusError('INVALID_ARGUMENT', `${what}: options.signal must be an AbortSignal`);
    }
    const scope = options?.scope;
    if (scope !== undefined && scope !== 'mesh' && scope !== 'node') {
      throw new BusError('INVALID_ARGUMENT', `${what}: options.scope must be 'mesh' or 'node'`);
    }
    return scope === undefined
      ? { timeoutMs: this.timeoutMs(options), signal }
      : { timeoutMs: this.timeoutMs(options), signal, scope };
  }

  /**
   * Checks a system call of `name` (`$…`): the bus is open, the name is a system one. Returns its
   * options defaulted (not checked further: the system protocols pass their own).
   * @throws a `BusError` `CLOSED` or `INVALID_ARGUMENT`.
   */
  prepareSystem(name: string, options: CallOptions | undefined): ResolvedCallOptions {
    if (this.bus.isClosed) throw new BusError('CLOSED', `'${name}': the bus is closed`);
    if (!isSystemName(name)) {
      throw new BusError('INVALID_ARGUMENT', `system names start with '$': ${name}`);
    }
    const signal = options?.signal;
    return { timeoutMs: this.timeoutMs(options), signal };
  }

  /** A call's `timeoutMs`, checked, or the bus's default. */
  private timeoutMs(options: CallOptions | undefined): number {
    return options?.timeoutMs === undefined
      ? this.callTimeoutMs
      : checkDurationMs(options.timeoutMs, 'timeoutMs');
  }

  /** Encodes a call's input within the bus's payload limits. */
  encode(input: unknown): Encoded {
    return encode(input, this.maxPayloadBytes, this.maxDepth);
  }

  /** Decodes and validates a result against `method`'s output schema. Throws BAD_OUTPUT. */
  decodeResult(method: string, result: Encoded, target: Target): unknown {
    const schema = this.contract.methods.get(method)?.output;
    const value = decode(result);
    if (schema === undefined) return undefined;
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
    throw new BusError(
      'BAD_OUTPUT',
      `call '${method}' to ${describeTarget(target)}: the handler's result fails the output schema: ${summarizeIssues(parsed.error.issues, 'output')}`,
      { issues: toIssues(parsed.error.issues) },
    );
  }

  /** One worker's item of a `callAll`, as the caller gets it: its result, or its error. */
  settleItem(method: string, item: GatherItem): CallAllResult<unknown> {
    const who = item.o === undefined ? { workerId: item.w } : { workerId: item.w, node: item.o };
    if (item.e !== undefined) {
      return { ...who, status: 'rejected', error: BusError.fromJSON(item.e) };
    }
    try {
      const value = this.decodeResult(method, item, item.w);
      return { ...who, status: 'fulfilled', value };
    } catch (error) {
      return { ...who, status: 'rejected', error: toBusError(error, 'PROTOCOL') };
    }
  }
}
