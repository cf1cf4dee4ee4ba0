/**
 * The CPU-heavy route's contracts: what a worker's thread pool does (`checkBatch`: validate a
 * batch of 1,000 records and digest them), and what the primary asks a worker about it
 * (`cpuStats`, in the cluster's contract).
 */
import { defineContract } from 'clusterbus';
import { z } from 'zod';

/** One record of a batch, validated field by field. */
export const Order = z.object({
  id: z.string().uuid(),
  email: z.string().email(),
  sku: z.string().regex(/^[A-Z]{3}-\d{4}$/),
  quantity: z.number().int().min(1).max(1_000),
  priceCents: z.number().int().nonnegative(),
  tags: z.array(z.string().min(1)).max(8),
  placedAt: z.date(),
});

/** What checking a batch finds. */
export const BatchReport = z.object({
  valid: z.number(),
  invalid: z.number(),
  totalCents: z.number(),
  /** A SHA-256 digest over the valid records, chained `rounds` times. */
  digest: z.string(),
});
export type BatchReport = z.output<typeof BatchReport>;

/** The thread pool's contract. Its input is the raw batch: the thread validates each record. */
export const cpuContract = defineContract({
  methods: {
    checkBatch: { input: z.object({ records: z.array(z.unknown()) }), output: BatchReport },
  },
});

/** A worker's figures of the CPU routes since the last `cpuStats` call (which resets them). */
export const CpuStats = z.object({
  workerId: z.number(),
  /** The worker's event-loop delay (`monitorEventLoopDelay`, 10 ms resolution removed), in ms. */
  loopDelayMs: z.object({ p50: z.number(), p99: z.number(), max: z.number() }),
  /** Batches checked inline (`/cpu-inline`) and through the pool (`/cpu`). */
  inline: z.number(),
  pooled: z.number(),
  /** The pool's figures now. */
  pool: z.object({
    threads: z.number(),
    busy: z.number(),
    queued: z.number(),
    callsServed: z.number(),
  }),
});
export type CpuStats = z.output<typeof CpuStats>;
