/**
 * What crosses NATS between the primaries of a mesh: the subjects (all under the app's prefix)
 * and the JSON bodies of requests, replies, events, cancels and presence. Payloads stay as the
 * codec made them (superjson's `p`/`q`); they are decoded and validated only by the process that
 * uses them.
 *
 * @module
 */
import { BusError, type BusErrorJSON } from '../errors.js';
import type { Encoded, GatherItem } from '../protocol/envelope.js';

/** The subjects of one app (`prefix`) and contract (`hash`: its fingerprint). */
export class Subjects {
  constructor(
    private readonly prefix: string,
    private readonly hash: string,
  ) {}
  /** Presence heartbeats of every node. */
  get presence(): string {
    return `${this.prefix}.presence`;
  }
  /** Events (one subject per contract: a node with another contract does not get them). */
  get events(): string {
    return `${this.prefix}.evt.${this.hash}`;
  }
  /** Requests to one worker of `node`. */
  call(node: string): string {
    return `${this.prefix}.call.${node}`;
  }
  /** A gather of every worker of `node`. */
  all(node: string): string {
    return `${this.prefix}.all.${node}`;
  }
  /** Cancels of requests (every node looks up the id among the requests it serves). */
  get cancelAll(): string {
    return `${this.prefix}.cancel`;
  }
  /** `'any'` requests for `method` (a queue group per contract). */
  any(method: string): string {
    return `${this.prefix}.any.${this.hash}.${methodToken(method)}`;
  }
  /** The queue group of `'any'` requests. */
  get anyQueue(): string {
    return `${this.prefix}-any`;
  }
}

/** A method name as subject tokens: itself when it is plain, else base64url with a marker. */
function methodToken(method: string): string {
  return /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(method)
    ? method
    : `~${Buffer.from(method).toString('base64url')}`;
}

/** A request to a node: method, worker (or 'any'), payload, cancel id, timeout. */
export interface WireRequest extends Encoded {
  /** Method. */
  m: string;
  /** Worker id on the receiving node; absent for `'any'` and gathers. */
  w?: number;
  /** Cancel id (`<node>:<seq>`), to stop the remote handler. */
  c: string;
  /** The caller's timeout in ms (per worker for a gather). */
  d: number;
}

/** A reply: the result, a gather's items, or an error. */
export interface WireReply extends Encoded {
  a?: GatherItem[];
  e?: BusErrorJSON;
}

/** An event: publishing node, publisher id there, topic, payload. */
export interface WireEvent extends Encoded {
  n: string;
  s: number;
  t: string;
}

/** A presence heartbeat. */
export interface WirePresence {
  /** The node. */
  n: string;
  /** Its contract's fingerprint hash. */
  h: string;
  /** Its workers: `[id, methods]`. */
  w: Array<[number, string[]]>;
  /** Leaving on purpose. */
  b?: 1;
  /** Asks every other node to announce itself now (sent when a node joins). */
  a?: 1;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** JSON bytes of a wire body. */
export function toBytes(body: object): Uint8Array {
  return encoder.encode(JSON.stringify(body));
}

/**
 * Parses the JSON body of a NATS message.
 * @throws BusError `PROTOCOL` when it is not a JSON object.
 */
export function fromBytes(data: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch {
    throw new BusError('PROTOCOL', `${what}: not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BusError('PROTOCOL', `${what}: not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** The payload fields of a body, alone. */
export function payload(body: Encoded): Encoded {
  const out: Encoded = {};
  if (body.p !== undefined) out.p = body.p;
  if (body.q !== undefined) out.q = body.q;
  return out;
}

/** Checks a presence body. */
export function isPresence(
  v: Record<string, unknown>,
): v is WirePresence & Record<string, unknown> {
  return (
    typeof v.n === 'string' &&
    typeof v.h === 'string' &&
    Array.isArray(v.w) &&
    v.w.every(
      (x) =>
        Array.isArray(x) &&
        Number.isSafeInteger(x[0]) &&
        Array.isArray(x[1]) &&
        x[1].every((m: unknown) => typeof m === 'string'),
    )
  );
}
