/**
 * What a KV bucket's messages hold, as the mirror (kv-bucket.ts) keeps them: entries (a value,
 * its revision, its TTL expiry, when this node received it), their bodies (superjson), and the
 * server's "wrong last sequence" answer to a lost compare-and-set.
 *
 * @module
 */
import superjson from 'superjson';

/** One key's last value in the mirror (a tombstone after a delete). */
export interface MirrorEntry {
  readonly value: unknown;
  /** The KV revision (the bucket stream's sequence of the write). */
  readonly revision: number;
  /** Expiry (epoch ms, the writer's clock) for a value written with a TTL. */
  readonly expiresAt: number | undefined;
  /** `performance.now()` when this node received it. */
  readonly receivedAt: number;
  readonly deleted: boolean;
}

/** A change of the bucket, as the mirror applied it. */
export interface MirrorChange {
  readonly key: string;
  readonly op: 'set' | 'delete' | 'expire';
  readonly entry: MirrorEntry;
}

/** What a write decides from the current entry: write, delete, or answer without writing. */
export type Decision<R> =
  | {
      readonly put: unknown;
      readonly expiresAt?: number | undefined;
      readonly result: (revision: number) => R;
    }
  | { readonly del: 'delete' | 'expire'; readonly result: (revision: number) => R }
  | { readonly answer: R };

/** Wrong last (subject) sequence: the compare-and-set lost. */
const WRONG_LAST_SEQUENCE = 10071;
/** A value's body as written: the value and its expiry, or a delete's kind. */
export function encodeBody(body: { v?: unknown; x?: number | undefined; o?: string }): Uint8Array {
  return new TextEncoder().encode(superjson.stringify(body));
}

/** The sequence a "wrong last sequence: N" error names. */
export function namedSequence(error: unknown): number | undefined {
  const m = /wrong last sequence: (\d+)/i.exec(String((error as Error)?.message));
  return m === null ? undefined : Number(m[1]);
}

/** A mirror entry as `live()` sees it (undefined when deleted or expired). */
export function liveOf(e: MirrorEntry | undefined): MirrorEntry | undefined {
  if (e === undefined || e.deleted) return undefined;
  return e.expiresAt !== undefined && e.expiresAt <= Date.now() ? undefined : e;
}

/** Reads a body written by {@link encodeBody}; `{}` for an empty or unreadable one. */
export function parseBody(data: Uint8Array): { v?: unknown; x?: number; o?: string } {
  if (data.length === 0) return {};
  try {
    return superjson.parse(new TextDecoder().decode(data)) ?? {};
  } catch {
    return {};
  }
}

export function isWrongLastSequence(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown };
  return e?.code === WRONG_LAST_SEQUENCE || /wrong last sequence/i.test(String(e?.message));
}
