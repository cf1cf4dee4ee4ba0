/**
 * Both sides: the state protocol between the clients (the hub's and every worker's, client.ts)
 * and the host (the hub side, host.ts): one table of verbs shared by both sides, the shapes of
 * requests (validated by the host) and of answers and changes (checked by the client).
 *
 * @module
 */
import { z } from 'zod';
import { BusError, summarizeIssues, toIssues } from '../errors.js';
import { MAX_TIMER_MS } from '../util/duration.js';

/** The extension's name: its system names are `$state.<verb>`. */
export const STATE = 'state';

/** The verbs of the state protocol: calls (request/response) and one-way messages. */
export const Verb = {
  get: 'get',
  set: 'set',
  increment: 'increment',
  delete: 'delete',
  keys: 'keys',
  watch: 'watch',
  /** One-way, client to host: stop watch `w`. */
  unwatch: 'unwatch',
  /** One-way, host to client: a change for the listed watches. */
  change: 'change',
  acquire: 'acquire',
  release: 'release',
  /** Moves a lease's expiry to now + `ttl` (its holder only, with its token and proof). */
  extend: 'extend',
  /** One-way, client to host: the caller gave up on acquire `a` (drop it, or free its lease). */
  cancel: 'cancel',
} as const;

type Verbs = typeof Verb;

/** The system names on the wire, `$state.<verb>`, by verb (what a forged frame names). */
export const Op = Object.fromEntries(
  Object.entries(Verb).map(([k, verb]) => [k, `$${STATE}.${verb}`]),
) as { readonly [K in keyof Verbs]: `$state.${Verbs[K]}` };

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
  /** `x`: the entry's expiry (epoch ms), when it has one (a fixed window's end). */
  increment: z.object({ v: z.number(), r: z.number().int().positive(), x: z.number().optional() }),
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
