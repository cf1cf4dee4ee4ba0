/**
 * What travels in the benchmarks: payload sizes, the reply checks, and the errors that abort or
 * skip a case. No zod here (see schemas.ts), so the untyped baselines' workers do not load it.
 *
 * @module
 */
import type { Echo, Payload, Report, StrPayload } from './schemas.js';
import { objectTemplate } from './shape.js';

/** JSON bytes of `{"id":123456,"s":""}`. */
const PAYLOAD_OVERHEAD = 20;

/**
 * The `s` of an echo payload `{ id, s }` whose JSON is about `bytes` long (with a 6-digit id):
 * `'x'` repeated, so 64 B, 1 KiB and 64 KiB are the sizes of the whole object's JSON.
 */
export function filler(bytes: number): string {
  return 'x'.repeat(Math.max(0, bytes - PAYLOAD_OVERHEAD));
}

/** Human name of a payload size: `64 B`, `1 KiB`, `64 KiB`. */
export function sizeName(bytes: number): string {
  return bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

/** Thrown when a reply, event or count is wrong: the case is aborted, no number is reported. */
export class CheckError extends Error {
  override readonly name = 'CheckError';
}

/**
 * Makes the echo payload of call `i`: an object payload of about `bytes` of JSON (a fresh
 * top-level object per call, the items shared), or with `shape: 'string'` the `{ id, s }` one.
 */
export function echoMaker(
  bytes: number,
  shape: 'object' | 'string' = 'object',
): (i: number) => Echo {
  if (shape === 'string') {
    const s = filler(bytes);
    return (id) => ({ id, s });
  }
  const template = objectTemplate(bytes);
  return (seq) => ({ ...template, seq });
}

/** Checks an echo reply against what was sent: same seq (id) and the same lengths. */
export function checkEcho(sent: Echo, reply: unknown): void {
  if ('items' in sent) {
    const r = reply as Partial<Payload> | null;
    if (
      typeof r === 'object' &&
      r !== null &&
      r.seq === sent.seq &&
      r.items?.length === sent.items.length &&
      r.name?.length === sent.name.length
    )
      return;
    throw new CheckError(
      `bad echo reply for seq ${sent.seq} (${sent.items.length} items): ${JSON.stringify(reply)?.slice(0, 120)}`,
    );
  }
  const r = reply as Partial<StrPayload> | null;
  if (typeof r !== 'object' || r === null || r.id !== sent.id || r.s?.length !== sent.s.length) {
    throw new CheckError(
      `bad echo reply for id ${sent.id} (${sent.s.length} chars): ${JSON.stringify(reply)?.slice(0, 120)}`,
    );
  }
}

/** The `s` of every broadcast event: 32 chars (events of about 50 B of JSON). */
export const TICK_FILLER = 'x'.repeat(32);

/** Thrown when an implementation cannot run a case here (missing feature or service). */
export class SkipError extends Error {
  override readonly name = 'SkipError';
}

/** Narrows a report to `kind`; a worker's error becomes a thrown {@link CheckError}. */
export function expectReport<K extends Report['kind']>(
  report: Report,
  kind: K,
  who: string,
): Extract<Report, { kind: K }> {
  if (report.kind === 'error') throw new CheckError(`${who}: ${report.message}`);
  if (report.kind === 'skipped') throw new SkipError(report.reason);
  if (report.kind !== kind) {
    throw new CheckError(`${who}: expected a '${kind}' report, got '${report.kind}'`);
  }
  return report as Extract<Report, { kind: K }>;
}
