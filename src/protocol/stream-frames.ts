/**
 * The frames of a stream (a streamed response), and their shape checks. Their kinds are in the
 * kinds table of `envelope.ts` (`so`, `si`, `se`, `sc`, `sx`), which reads them with
 * {@link streamFrameProblem}. Ids are the consumer's, sequential per link and direction: `so`,
 * `sc` and `sx` travel to the producer, `si` and `se` back to the consumer, so the two
 * directions of one link never mix their ids.
 *
 * @module
 */
import type { BusErrorJSON } from '../errors.js';

interface StreamBase {
  /** The marker (see `envelope.ts`). */
  $cb: 1;
  /** The stream id. */
  i: number;
}

/** consumer -> producer: open a stream of method `m`, with its first credit. */
export interface StreamOpenFrame extends StreamBase {
  k: 'so';
  /** Method name. */
  m: string;
  /** Target, when a worker asks the primary to route (absent: the receiver itself). */
  t?: number | 'any';
  /** Target slot, when a worker asks the primary to route to the worker in that slot. */
  n?: number;
  /** Original consumer, set by the primary when it forwards (0: primary). */
  s?: number;
  /** Item credit: how many items the producer may send before it is given more. */
  c: number;
  /** Byte credit: the producer sends while some is left (the last item may overshoot it). */
  b: number;
  /** The input, encoded (superjson's `json` and `meta`). */
  p?: unknown;
  q?: unknown;
}

/** producer -> consumer: one item. */
export interface StreamItemFrame extends StreamBase {
  k: 'si';
  p?: unknown;
  q?: unknown;
}

/** producer -> consumer: the stream ended: completed, or with error `e`. */
export interface StreamEndFrame extends StreamBase {
  k: 'se';
  e?: BusErrorJSON;
}

/** consumer -> producer: `c` more items and `b` more bytes. */
export interface StreamCreditFrame extends StreamBase {
  k: 'sc';
  c: number;
  b: number;
}

/** consumer -> producer: the consumer stopped; stop the generator. */
export interface StreamCancelFrame extends StreamBase {
  k: 'sx';
}

/** The frames of a stream. */
export type StreamFrame =
  | StreamOpenFrame
  | StreamItemFrame
  | StreamEndFrame
  | StreamCreditFrame
  | StreamCancelFrame;

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isName = (v: unknown): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= 256;

/** Why `f` (a frame of a stream kind) is malformed, or undefined. Never throws. */
export function streamFrameProblem(f: Record<string, unknown>): string | undefined {
  if (!isId(f.i)) return `'${String(f.k)}' frame without a valid stream id`;
  switch (f.k) {
    case 'so':
      if (!isName(f.m)) return 'stream open without a valid method name';
      if (f.t !== undefined && f.t !== 'any' && !isId(f.t))
        return 'stream open with an invalid target';
      if (f.n !== undefined && !isId(f.n)) return 'stream open with an invalid target slot';
      if (f.s !== undefined && !isId(f.s)) return 'stream open with an invalid source';
      if (!isId(f.c) || !isId(f.b)) return 'stream open without a valid credit';
      return undefined;
    case 'se':
      if (f.e !== undefined && (typeof f.e !== 'object' || f.e === null))
        return 'stream end with a malformed error';
      return undefined;
    case 'sc':
      if (!isId(f.c) || !isId(f.b)) return 'stream credit with an invalid amount';
      return undefined;
    default:
      return undefined;
  }
}
