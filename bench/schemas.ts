/**
 * The zod schemas every implementation shares: the echo payloads, the broadcast event, and the
 * jobs the primary hands to a worker with their reports. Only the typed implementations load
 * zod in their workers; the others import the types alone.
 *
 * @module
 */
import { z } from 'zod';

/**
 * The echo payload, shaped like what an API moves: `{ seq, id, name, score, items: [{ k, v, s }] }`
 * sized by its JSON (64 B, 1 KiB, 64 KiB: bench/shape.ts builds them).
 */
export const Payload = z.object({
  seq: z.number().int(),
  id: z.string(),
  name: z.string(),
  score: z.number(),
  items: z.array(z.object({ k: z.string(), v: z.number(), s: z.string() })),
});
export type Payload = z.infer<typeof Payload>;

/**
 * The single-string echo payload of earlier runs, kept as an extra row: `{ id, s }` where `s` is
 * `'x'` repeated so that the JSON of the whole object (with a 6-digit id) is the nominal size.
 */
export const StrPayload = z.object({ id: z.number().int(), s: z.string() });
export type StrPayload = z.infer<typeof StrPayload>;

/** Either echo payload. */
export type Echo = Payload | StrPayload;

/** The broadcast event: `n` counts from 1 per cluster; `s` is 32 chars (about 50 B of JSON). */
export const Tick = z.object({ n: z.number().int(), s: z.string() });
export type Tick = z.infer<typeof Tick>;
const count = z.number().int().nonnegative();

/** Work the primary hands to a worker; the worker answers with a {@link Report}. */
export const Job = z.discriminatedUnion('kind', [
  /** Sequential echo calls (object payloads of `bytes`) to worker `target`, through the primary. */
  z.object({
    kind: z.literal('relay-seq'),
    target: z.number().int(),
    warmup: count,
    calls: count,
    bytes: count,
  }),
  /** Pipelined echo calls to worker `target`, `inflight` at a time. */
  z.object({
    kind: z.literal('relay-pipe'),
    target: z.number().int(),
    warmup: count,
    calls: count,
    inflight: count,
    bytes: count,
  }),
  /** Answer once `total` broadcast events (numbered 1..total) have arrived, in order. */
  z.object({ kind: z.literal('count'), total: count }),
  /** Increment counter `key` by 1, `calls` times, `inflight` at a time. */
  z.object({ kind: z.literal('incr'), key: z.string(), calls: count, inflight: count }),
  /** Collect garbage (when exposed) and report memory. */
  z.object({ kind: z.literal('mem') }),
  /** Report this process's CPU time so far (process.cpuUsage). */
  z.object({ kind: z.literal('cpu') }),
]);
export type Job = z.infer<typeof Job>;

/** What a worker reports for a {@link Job}. */
export const Report = z.discriminatedUnion('kind', [
  /** Latencies in µs. */
  z.object({ kind: z.literal('latency'), p50: z.number(), p99: z.number(), calls: count }),
  z.object({ kind: z.literal('rate'), calls: count, ms: z.number() }),
  z.object({ kind: z.literal('count'), received: count }),
  /** Every value the increments resolved to, and how long they took. */
  z.object({ kind: z.literal('incr'), values: z.array(z.number()), ms: z.number() }),
  z.object({ kind: z.literal('mem'), rss: z.number(), heapUsed: z.number(), gc: z.boolean() }),
  /** CPU time (user + system) in µs. */
  z.object({ kind: z.literal('cpu'), us: z.number() }),
  z.object({ kind: z.literal('skipped'), reason: z.string() }),
  z.object({ kind: z.literal('error'), message: z.string() }),
]);
export type Report = z.infer<typeof Report>;
