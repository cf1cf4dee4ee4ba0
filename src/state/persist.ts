/**
 * Snapshots of the stores on disk: one superjson file (so `Date`, `Map`, `BigInt` values survive),
 * written atomically (a temporary file, flushed, then renamed over the old one) and checked
 * strictly when read, so a corrupt or truncated file is a clear `PERSIST_FAILED` error, never a
 * crash later.
 *
 * @module
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { nanoid } from 'nanoid';
import superjson from 'superjson';
import { z } from 'zod';
import { BusError, toIssues } from '../errors.js';

/** The snapshot format's name and version, the first fields of every file. */
const FORMAT = 'clusterbus.store';
const VERSION = 1;

/** One entry: key, value as written, revision, expiry (epoch ms) or null. */
export type SnapshotEntry = [
  key: string,
  value: unknown,
  revision: number,
  expiresAt: number | null,
];

/** What a snapshot holds. */
export interface SnapshotData {
  /** When it was taken, epoch ms. */
  readonly savedAt: number;
  /** The last fencing token granted, so tokens keep growing across restarts. */
  readonly token: number;
  /** Each store's revision counter and entries, by store name. */
  readonly stores: Readonly<
    Record<string, { readonly revision: number; readonly entries: SnapshotEntry[] }>
  >;
}

const count = z.number().int().nonnegative();
const Shape = z.object({
  format: z.literal(FORMAT),
  version: z.literal(VERSION),
  savedAt: z.number(),
  token: count,
  stores: z.record(
    z.string(),
    z.object({
      revision: count,
      entries: z.array(
        z.tuple([z.string(), z.unknown(), z.number().int().positive(), z.number().nullable()]),
      ),
    }),
  ),
});

/** Serializes a snapshot (synchronously: the stores cannot change while it is taken). */
export function encodeSnapshot(data: SnapshotData): string {
  return superjson.stringify({ format: FORMAT, version: VERSION, ...data });
}

/**
 * Reads a snapshot text back.
 *
 * @throws {@link BusError} `PERSIST_FAILED` naming `file` and what is wrong (not JSON, e.g.
 *   truncated; not a clusterbus snapshot; another version; an entry newer than its store).
 */
export function decodeSnapshot(text: string, file: string): SnapshotData {
  let raw: unknown;
  try {
    raw = superjson.parse(text);
  } catch (cause) {
    throw new BusError(
      'PERSIST_FAILED',
      `store snapshot '${file}' is corrupt (not valid JSON: truncated or overwritten?): ${(cause as Error).message}. Move it away to start with empty stores.`,
      { cause },
    );
  }
  const parsed = Shape.safeParse(raw);
  if (!parsed.success) {
    throw new BusError(
      'PERSIST_FAILED',
      `store snapshot '${file}' is not a clusterbus store snapshot of version ${VERSION}: ${parsed.error.message}. Move it away to start with empty stores.`,
      { issues: toIssues(parsed.error.issues) },
    );
  }
  for (const [name, store] of Object.entries(parsed.data.stores)) {
    for (const [key, , revision] of store.entries) {
      if (revision > store.revision) {
        throw new BusError(
          'PERSIST_FAILED',
          `store snapshot '${file}' is inconsistent: store '${name}' key '${key}' has revision ${revision}, after the store's ${store.revision}`,
        );
      }
    }
  }
  const { savedAt, token, stores } = parsed.data;
  return { savedAt, token, stores: stores as SnapshotData['stores'] };
}

/**
 * Loads the snapshot at `file`: `undefined` if there is none (an empty start).
 *
 * @throws {@link BusError} `PERSIST_FAILED` when it cannot be read or decoded.
 */
export async function readSnapshot(file: string): Promise<SnapshotData | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BusError(
      'PERSIST_FAILED',
      `store snapshot '${file}' could not be read: ${(cause as Error).message}`,
      { cause },
    );
  }
  return decodeSnapshot(text, file);
}

/**
 * Writes `text` to `file` atomically: to a temporary file next to it, flushed to disk, then
 * renamed over `file`. A reader sees the old snapshot or the new one, never half of one.
 *
 * @throws {@link BusError} `PERSIST_FAILED` when it cannot be written.
 */
export async function writeSnapshot(file: string, text: string): Promise<void> {
  // Unique per write: two writes that overlap (the interval's and close's) never share a file.
  const tmp = `${file}.${nanoid(10)}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true });
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (cause) {
    await unlink(tmp).catch(() => {});
    throw new BusError(
      'PERSIST_FAILED',
      `store snapshot '${file}' could not be written: ${(cause as Error).message}`,
      { cause },
    );
  }
}

/**
 * Writes the snapshot of the stores to `file`: every `intervalMs` when something changed since
 * the last one (and none is being written), and once more on close. The stores are captured
 * synchronously by `take` (one consistent cut), then written in the background; a write that
 * fails is reported and retried at the next interval.
 */
export class SnapshotWriter {
  private readonly timer: NodeJS.Timeout;
  private saving: Promise<void> | undefined;
  private dirty = false;

  constructor(
    private readonly file: string,
    intervalMs: number,
    private readonly take: () => SnapshotData,
    private readonly report: (error: BusError) => void,
  ) {
    this.timer = setInterval(() => {
      void this.save();
    }, intervalMs);
    this.timer.unref();
  }

  /** Something changed: the next interval writes a snapshot. */
  markDirty(): void {
    this.dirty = true;
  }

  private save(): Promise<void> {
    if (this.saving !== undefined) return this.saving;
    if (!this.dirty) return Promise.resolve();
    this.dirty = false;
    let text: string;
    try {
      text = encodeSnapshot(this.take());
    } catch (cause) {
      this.report(
        new BusError(
          'PERSIST_FAILED',
          `store snapshot '${this.file}' could not be encoded: ${(cause as Error).message}`,
          { cause },
        ),
      );
      return Promise.resolve();
    }
    this.saving = writeSnapshot(this.file, text).then(
      () => {
        this.saving = undefined;
      },
      (error: unknown) => {
        this.saving = undefined;
        this.dirty = true;
        this.report(
          error instanceof BusError ? error : new BusError('PERSIST_FAILED', String(error)),
        );
      },
    );
    return this.saving;
  }

  /** Stops the interval and writes a last snapshot if anything changed. Never rejects. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.saving;
    await this.save();
  }
}
