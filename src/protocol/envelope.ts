/**
 * The one envelope every bus message travels in: a marker key with the protocol version, a kind
 * from {@link Kind}, and kind-specific fields with short names. Anything without the marker is
 * someone else's message and is left alone.
 *
 * @module
 */
import type { BusErrorJSON } from '../errors.js';
import { MAX_TIMER_MS } from '../util/duration.js';
import { type StreamFrame, streamFrameProblem } from './stream-frames.js';

export type * from './stream-frames.js';

/** The marker key. Never starts with `NODE_` (Node diverts those to `internalMessage`). */
export const MARKER = '$cb';
/** The protocol version carried as the marker's value. */
export const PROTOCOL_VERSION = 1;

/**
 * Every kind of frame, shared by both sides.
 *
 * Wire keys are one letter and mean one thing per frame kind (the interfaces below say each):
 *
 * | kind | keys |
 * | --- | --- |
 * | every frame | `$cb` marker and protocol version, `k` kind |
 * | `req` | `i` request id, `m` method, `t` target (worker id, `'any'`, `'all'`), `n` target slot, `s` original caller (set by the hub), `d` per-worker timeout of a gather (ms), `o` the node of the target (mesh), `p`/`q` payload |
 * | `res` | `i`, `p`/`q` result, `a` gather items (`w` worker id, `o` its node, `p`/`q`, or `e` error) |
 * | `err` | `i`, `e` the error's wire form |
 * | `cancel` | `i` |
 * | `evt` | `m` topic, `s` publisher, `p`/`q` payload |
 * | `hello` | `pid`, `h` contract hash, `f` contract fingerprint entries |
 * | `welcome` | `w` the worker's id, `e` a refusal, `x` the extensions' parts (`{ [extension]: data }`, encoded `p`/`q`) |
 * | `ready`, `hdl` | `m` method names |
 * | `b` | `f` frames, without marker |
 * | `sub` | `a` patterns subscribed, `r` patterns unsubscribed (each a topic pattern) |
 * | `so` | `i` stream id (the consumer's, per link and direction), `m`, `t`, `n`, `s` as `req`, `c` item credit, `b` byte credit, `p`/`q` input |
 * | `si` | `i` stream id, `p`/`q` one item |
 * | `se` | `i` stream id, `e` the error that ended it (absent: it completed) |
 * | `sc` | `i` stream id, `c` more item credit, `b` more byte credit |
 * | `sx` | `i` stream id |
 *
 * A payload `p`/`q` is the codec's (src/protocol/codec.ts): superjson's `json` and `meta`.
 * System method and topic names are `$<extension>.<verb>` (src/core/extension.ts).
 */
export const Kind = {
  /** worker -> primary: the worker's bus is up. */
  hello: 'hello',
  /** primary -> worker: the primary accepted the hello. */
  welcome: 'welcome',
  /** a request (RPC call). */
  request: 'req',
  /** a successful response. */
  response: 'res',
  /** a failed response. */
  error: 'err',
  /** the caller gave up on a request (timeout or abort). */
  cancel: 'cancel',
  /** a published event. */
  event: 'evt',
  /**
   * worker -> primary: the worker is ready to be routed to, with the methods it handles. Sent
   * one macrotask after `connect()` resolved, so handlers registered right after it are in place.
   */
  ready: 'ready',
  /** worker -> primary: the full list of methods this worker handles. */
  handlers: 'hdl',
  /** worker -> primary: the worker's bus is closing on purpose. */
  bye: 'bye',
  /** Several frames coalesced into one IPC message (`f`: the frames, in order, without marker). */
  batch: 'b',
  /** worker -> primary: topic patterns this worker's bus subscribed to, or no longer does. */
  subscriptions: 'sub',
  /** consumer -> producer: open a stream (a streamed response) with its first credit. */
  streamOpen: 'so',
  /** producer -> consumer: one item of a stream. */
  streamItem: 'si',
  /** producer -> consumer: the stream ended (completed, or with an error). */
  streamEnd: 'se',
  /** consumer -> producer: more credit (items and bytes the consumer asks for). */
  streamCredit: 'sc',
  /** consumer -> producer: the consumer stopped; stop the generator. */
  streamCancel: 'sx',
} as const;

/** A frame kind. */
export type FrameKind = (typeof Kind)[keyof typeof Kind];

/** Source or target id on the wire: a worker id, or 0 for the primary. */
export const PRIMARY_ID = 0;

/** A target on the wire: a worker id, 0 (primary), `'any'`, or `'all'` (gather). */
export type WireTarget = number | 'any' | 'all';

/** A payload encoded by the codec: superjson's `json` and `meta`, both omitted when empty. */
export interface Encoded {
  /** superjson's JSON part. */
  p?: unknown;
  /** superjson's meta part, absent where the value is plain JSON. */
  q?: unknown;
}

interface Base {
  [MARKER]: typeof PROTOCOL_VERSION;
}

export interface HelloFrame extends Base {
  k: typeof Kind.hello;
  /** The worker's pid. */
  pid: number;
  /** The worker's contract fingerprint hash. */
  h?: string;
  /** The worker's contract fingerprint entries (`method:add` -> hash), to name what differs. */
  f?: Record<string, string>;
}

export interface WelcomeFrame extends Base {
  k: typeof Kind.welcome;
  /** The worker's id as the primary knows it. */
  w: number;
  /** The primary refused the worker (e.g. `CONTRACT_MISMATCH`): its `connect()` rejects with it. */
  e?: BusErrorJSON;
  /**
   * The extensions' parts of the welcome, one payload: `{ [extension]: data }` encoded (`p`/`q`),
   * e.g. the worker's slot, the current config.
   */
  x?: Encoded;
}

export interface RequestFrame extends Base, Encoded {
  k: typeof Kind.request;
  /** Request id, sequential per link and direction. */
  i: number;
  /** Method name. */
  m: string;
  /** Target, when a worker asks the primary to route (absent: the receiver itself). */
  t?: WireTarget;
  /** Target slot, when a worker asks the primary to route to the worker in that slot. */
  n?: number;
  /** Original caller, set by the primary when it forwards (0: primary). */
  s?: number;
  /** For a gather (`t: 'all'`): the per-worker timeout in ms. */
  d?: number;
  /** With a mesh: the node the target is on (a gather: only that node's workers). */
  o?: string;
}

/** One worker's answer inside a gather response. */
export interface GatherItem extends Encoded {
  /** Worker id. */
  w: number;
  /** The worker's node, with a mesh. */
  o?: string;
  /** The worker's error, when it failed. */
  e?: BusErrorJSON;
}

export interface ResponseFrame extends Base, Encoded {
  k: typeof Kind.response;
  i: number;
  /** For a gather: one item per worker. */
  a?: GatherItem[];
}

export interface ErrorFrame extends Base {
  k: typeof Kind.error;
  i: number;
  e: BusErrorJSON;
}

export interface CancelFrame extends Base {
  k: typeof Kind.cancel;
  i: number;
}

export interface EventFrame extends Base, Encoded {
  k: typeof Kind.event;
  /** Topic. */
  m: string;
  /** Publisher (0: primary), set by whoever first sends it. */
  s: number;
}

export interface HandlersFrame extends Base {
  k: typeof Kind.handlers | typeof Kind.ready;
  /** Every method the worker handles now. */
  m: string[];
}

export interface ByeFrame extends Base {
  k: typeof Kind.bye;
}

export interface SubscriptionsFrame extends Base {
  k: typeof Kind.subscriptions;
  /** Patterns now subscribed to. */
  a?: string[];
  /** Patterns no longer subscribed to. */
  r?: string[];
}

/** Frames a peer hands to its owner untouched. */
export type ControlFrame =
  | HelloFrame
  | WelcomeFrame
  | HandlersFrame
  | ByeFrame
  | SubscriptionsFrame;

/** Whether `frame` is one of a stream's. */
export function isStreamFrame(frame: Frame): frame is StreamFrame {
  return frame.k.length === 2 && frame.k[0] === 's' && frame.k !== 'sub';
}

/** Every frame of the protocol. */
export type Frame =
  | SubscriptionsFrame
  | StreamFrame
  | HelloFrame
  | WelcomeFrame
  | RequestFrame
  | ResponseFrame
  | ErrorFrame
  | CancelFrame
  | EventFrame
  | HandlersFrame
  | ByeFrame
  | BatchFrame;

/** A frame as written by a sender, before the marker is added. */
export type Outgoing<F extends Frame = Frame> = F extends Frame ? Omit<F, typeof MARKER> : never;

/** Adds the marker to an outgoing frame. */
export function seal<F extends Frame>(frame: Outgoing<F>): F {
  return { [MARKER]: PROTOCOL_VERSION, ...frame } as F;
}

/** Several frames in one message. */
export interface BatchFrame extends Base {
  k: typeof Kind.batch;
  /** The frames, in send order, each without the marker. */
  f: unknown[];
}

/** The result of reading a raw message: ours, someone else's, or ours but malformed. */
export type Parsed =
  | { readonly ok: true; readonly frame: Frame }
  | { readonly ok: false; readonly foreign: true }
  | { readonly ok: false; readonly foreign: false; readonly reason: string };

const FOREIGN: Parsed = { ok: false, foreign: true };

function bad(reason: string): Parsed {
  return { ok: false, foreign: false, reason };
}

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isName = (v: unknown): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= 256;

function isTarget(v: unknown): v is WireTarget {
  return v === 'any' || v === 'all' || isId(v);
}

/**
 * Reads one raw IPC message. Never throws: a message without the marker is `foreign`; one with
 * the marker but a wrong shape comes back with the reason, for the bus to count and report.
 */
export function parseFrame(raw: unknown): Parsed {
  if (typeof raw !== 'object' || raw === null || !Object.hasOwn(raw, MARKER)) return FOREIGN;
  const f = raw as Record<string, unknown>;
  if (f[MARKER] !== PROTOCOL_VERSION) {
    return bad(`unsupported protocol version ${show(f[MARKER])}`);
  }
  return parseBody(f);
}

/** Reads one frame of a batch (it has no marker of its own). Never throws. */
export function parseInnerFrame(raw: unknown): Parsed {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return bad('a batched frame is not an object');
  }
  const f = raw as Record<string, unknown>;
  if (f.k === Kind.batch) return bad('a batch inside a batch');
  return parseBody(f);
}

function parseBody(f: Record<string, unknown>): Parsed {
  switch (f.k) {
    case Kind.request:
      if (!isId(f.i)) return bad('request without a valid id');
      if (!isName(f.m)) return bad('request without a valid method name');
      if (f.t !== undefined && !isTarget(f.t)) return bad('request with an invalid target');
      if (f.n !== undefined && !isId(f.n)) return bad('request with an invalid target slot');
      if (f.s !== undefined && !isId(f.s)) return bad('request with an invalid source');
      if (f.d !== undefined && !(typeof f.d === 'number' && f.d > 0 && f.d <= MAX_TIMER_MS)) {
        return bad('request with an invalid gather timeout');
      }
      if (f.o !== undefined && !isName(f.o)) return bad('request with an invalid node');
      break;
    case Kind.response:
      if (!isId(f.i)) return bad('response without a valid id');
      if (f.a !== undefined && !isGather(f.a)) return bad('response with a malformed gather list');
      break;
    case Kind.error:
      if (!isId(f.i)) return bad('error without a valid id');
      if (typeof f.e !== 'object' || f.e === null) return bad('error frame without an error');
      break;
    case Kind.cancel:
      if (!isId(f.i)) return bad('cancel without a valid id');
      break;
    case Kind.event:
      if (!isName(f.m)) return bad('event without a valid topic');
      if (!isId(f.s)) return bad('event without a valid source');
      break;
    case Kind.handlers:
    case Kind.ready:
      if (!Array.isArray(f.m) || !f.m.every(isName))
        return bad('handlers frame without a name list');
      break;
    case Kind.hello:
      if (!isId(f.pid)) return bad('hello without a pid');
      if (f.h !== undefined && typeof f.h !== 'string')
        return bad('hello with an invalid contract hash');
      if (
        f.f !== undefined &&
        (typeof f.f !== 'object' ||
          f.f === null ||
          Array.isArray(f.f) ||
          !Object.values(f.f).every((v) => typeof v === 'string'))
      ) {
        return bad('hello with an invalid contract fingerprint');
      }
      break;
    case Kind.welcome:
      if (!isId(f.w)) return bad('welcome without a worker id');
      if (f.e !== undefined && (typeof f.e !== 'object' || f.e === null)) {
        return bad('welcome with a malformed refusal');
      }
      if (f.x !== undefined && (typeof f.x !== 'object' || f.x === null || Array.isArray(f.x))) {
        return bad('welcome with a malformed extension map');
      }
      break;
    case Kind.bye:
      break;
    case Kind.subscriptions:
      if (f.a !== undefined && !(Array.isArray(f.a) && f.a.every(isName)))
        return bad('subscriptions frame with a malformed pattern list');
      if (f.r !== undefined && !(Array.isArray(f.r) && f.r.every(isName)))
        return bad('subscriptions frame with a malformed pattern list');
      break;
    case Kind.streamOpen:
    case Kind.streamItem:
    case Kind.streamEnd:
    case Kind.streamCredit:
    case Kind.streamCancel: {
      const problem = streamFrameProblem(f);
      if (problem !== undefined) return bad(problem);
      break;
    }
    case Kind.batch:
      if (!Array.isArray(f.f) || f.f.length === 0) return bad('batch without frames');
      break;
    default:
      return bad(`unknown frame kind ${show(f.k)}`);
  }
  return { ok: true, frame: f as unknown as Frame };
}

/** A short, safe rendering of a value from the wire (never throws, whatever its prototype). */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40));
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return `${value}`;
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

function isGather(v: unknown): v is GatherItem[] {
  return (
    Array.isArray(v) &&
    v.every((x) => typeof x === 'object' && x !== null && isId((x as GatherItem).w))
  );
}
