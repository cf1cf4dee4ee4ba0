/**
 * The zod schemas every implementation shares: the echo payload, the broadcast event, and the
 * jobs the primary hands to a worker with their reports. Only the typed implementations load
 * zod in their workers; the others import the types alone.
 *
 * @module
 */
import { z } from 'zod';

/**
 * The echo payload: `{ id, s }` where `s` is `'x'` repeated so that the JSON of the whole object
 * (with a 6-digit id) is the nominal size: 64 B, 1 KiB, 64 KiB.
 */
export const Payload = z.object({ id: z.number().int(), s: z.string() });
export type Payload = z.infer<typeof Payload>;

/** The broadcast event: `n` counts from 1 per cluster; `s` is 32 chars (about 50 B of JSON). */
export const Tick = z.object({ n: z.number().int(), s: z.string() });
export type Tick = z.infer<typeof Tick>;
const count = z.number().int().nonnegative();

/** Work the primary hands to a worker; the worker answers with a {@link Report}. */
export const Job = z.discriminatedUnion('kind', [
  /** Sequential echo calls to worker `target`, routed through the primary. */
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
  z.object({ kind: z.literal('skipped'), reason: z.string() }),
  z.object({ kind: z.literal('error'), message: z.string() }),
]);
export type Report = z.infer<typeof Report>;
