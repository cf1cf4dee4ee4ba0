/**
 * The store protocol between the client proxies (every process) and the host (the primary): one
 * table of system names shared by both sides, the shapes of requests (validated by the host)
 * and of answers (checked by the client), and how the primary's own client finds its host.
 *
 * @module
 */
import { z } from 'zod';
import type { Origin } from '../bus/types.js';
import { BusError, summarizeIssues, toIssues } from '../errors.js';
import { MAX_TIMER_MS } from '../util/duration.js';

/** System methods (request/response) and topics (one-way) of the store protocol. */
export const Op = {
  get: '$kv.get',
  set: '$kv.set',
  increment: '$kv.incr',
  delete: '$kv.del',
  keys: '$kv.keys',
  watch: '$kv.watch',
  /** One-way, client to host: stop watch `w`. */
  unwatch: '$kv.unwatch',
  /** One-way, host to client: a change for the listed watches. */
  change: '$kv.change',
  acquire: '$lock.acquire',
  release: '$lock.release',
  /** Moves a lease's expiry to now + `ttl` (its holder only, with its token and proof). */
  extend: '$lock.extend',
  /** One-way, client to host: the caller gave up on acquire `a` (drop it, or free its lease). */
  cancel: '$lock.cancel',
} as const;

/** The longest key or lock name, in characters. */
export const MAX_KEY_LENGTH = 1_024;

const key = z.string().min(1).max(MAX_KEY_LENGTH);
const ms = z.number().positive().finite();
/** A lease's duration: a timer's, so at most Node's timer limit. */
const leaseMs = z.number().positive().max(MAX_TIMER_MS);
/** A lease's proof of ownership, as its grant gave it (checked by the host; see lock.ts). */
const proof = z.string().max(64);
const revision = z.number().int().nonnegative();
const id = z.number().int().positive();

/** Requests, as the host validates them. Short field names: they cross the IPC channel. */
export const Req = {
  get: z.object({ s: z.string(), k: key }),
  set: z.object({
    s: z.string(),
    k: key,
    v: z.unknown(),
    ttl: ms.optional(),
    if: revision.optional(),
  }),
  increment: z.object({ s: z.string(), k: key, by: z.number().finite(), ttl: ms.optional() }),
  delete: z.object({ s: z.string(), k: key, if: revision.optional() }),
  keys: z.object({ s: z.string(), p: z.string().optional() }),
  watch: z.object({
    s: z.string(),
    w: id,
    k: key.optional(),
    p: z.string().max(MAX_KEY_LENGTH).optional(),
    init: z.boolean().optional(),
  }),
  unwatch: z.object({ w: id }),
  acquire: z.object({ n: key, a: id, ttl: leaseMs, wait: z.number().min(0).max(MAX_TIMER_MS) }),
  release: z.object({ n: key, t: id, k: proof.optional() }),
  extend: z.object({ n: key, t: id, k: proof.optional(), ttl: leaseMs }),
  cancel: z.object({ n: key, a: id }),
} as const;

/** An entry on the wire: value as written, revision, expiry (epoch ms). */
export const WireEntry = z.object({
  v: z.unknown(),
  r: z.number().int().positive(),
  x: z.number().optional(),
});
export type WireEntry = z.infer<typeof WireEntry>;

/** Answers, as the client checks them. */
export const Res = {
  get: WireEntry.nullable(),
  set: z.union([
    z.object({ ok: z.literal(true), r: z.number().int().positive(), x: z.number().optional() }),
    z.object({ ok: z.literal(false), cur: WireEntry.nullable() }),
  ]),
  increment: z.object({ v: z.number(), r: z.number().int().positive() }),
  delete: z.union([
    z.object({ ok: z.literal(true), r: revision }),
    z.object({ ok: z.literal(false), cur: WireEntry.nullable() }),
  ]),
  keys: z.array(z.string()),
  watch: revision,
  acquire: z.object({ t: id, x: z.number(), k: proof }),
  release: z.boolean(),
  extend: z.object({ x: z.number() }),
  change: z.object({
    w: z.array(id),
    s: z.string(),
    k: key,
    o: z.enum(['set', 'delete', 'expire']),
    v: z.unknown().optional(),
    r: z.number().int().positive(),
  }),
} as const;
export type ChangeMessage = z.infer<typeof Res.change>;

/**
 * Parses `value` with one of the protocol's schemas, or throws a BusError of `code` naming
 * `what` (INVALID_ARGUMENT for a request the host refuses, PROTOCOL for an answer the client
 * cannot read).
 */
export function parseWire<S extends z.ZodType>(
  schema: S,
  value: unknown,
  code: 'INVALID_ARGUMENT' | 'PROTOCOL',
  what: string,
): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new BusError(code, `${what}: malformed: ${summarizeIssues(parsed.error.issues)}`, {
    issues: toIssues(parsed.error.issues),
  });
}

/** The part of the primary's host its own client talks to directly (no IPC to itself). */
export interface LocalHost {
  /** Handles a one-way message (`unwatch`, `cancel`) from `origin`, as its system event would. */
  receive(topic: string, payload: unknown, origin: Origin): void;
  /** Where changes for the primary's own watches go (a copy, as a worker would receive it). */
  setLocalSink(sink: ((message: unknown) => void) | undefined): void;
}

const hosts = new WeakMap<object, LocalHost>();

/** Registers the host of the primary's `bus`; returns a function that unregisters it. */
export function registerHost(bus: object, host: LocalHost): () => void {
  hosts.set(bus, host);
  return () => {
    if (hosts.get(bus) === host) hosts.delete(bus);
  };
}

/** The host registered for `bus`, if any (only ever for the primary's bus). */
export function hostOf(bus: object): LocalHost | undefined {
  return hosts.get(bus);
}
