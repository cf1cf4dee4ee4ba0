/**
 * The CPU-heavy work, the same code inline and in a thread: validate every record of a batch
 * against `Order`, then chain a SHA-256 digest over the valid ones.
 */
import { createHash, randomUUID } from 'node:crypto';
import { type BatchReport, Order } from './cpu-contract.js';

/** Digest rounds per record: enough to make a batch cost milliseconds of CPU. */
const ROUNDS = 8;

/** Validates and digests `records`. */
export function checkBatch(records: readonly unknown[]): BatchReport {
  let valid = 0;
  let invalid = 0;
  let totalCents = 0;
  let digest = '';
  for (const record of records) {
    const parsed = Order.safeParse(record);
    if (!parsed.success) {
      invalid++;
      continue;
    }
    valid++;
    totalCents += parsed.data.quantity * parsed.data.priceCents;
    const text = `${parsed.data.id}|${parsed.data.email}|${parsed.data.sku}|${parsed.data.placedAt.getTime()}`;
    for (let i = 0; i < ROUNDS; i++)
      digest = createHash('sha256').update(digest).update(text).digest('hex');
  }
  return { valid, invalid, totalCents, digest };
}

/** A batch of `count` records, one in fifty invalid. */
export function makeBatch(count: number): unknown[] {
  const placedAt = new Date();
  return Array.from({ length: count }, (_, i) => ({
    id: randomUUID(),
    email: i % 50 === 0 ? 'not an email' : `buyer${i}@example.com`,
    sku: `ABC-${String(i % 10_000).padStart(4, '0')}`,
    quantity: 1 + (i % 9),
    priceCents: 199 + i,
    tags: ['web', i % 2 === 0 ? 'promo' : 'full-price'],
    placedAt,
  }));
}
