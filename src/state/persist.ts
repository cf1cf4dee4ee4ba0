/**
 * The hub side: snapshots of the stores on disk. The file is JSON lines: a header (format, version,
 * when, the fencing token, each store's revision and entry count), then one line per entry (store,
 * key, revision, expiry, and the value as the bus's codec encodes a payload: plain JSON as it is,
 * `__proto__` keys included, or superjson's `json` and `meta`), so a snapshot carries what the wire
 * carries, and every value a store keeps (checked when it is written: see values.ts) can be written
 * and read back. It is written a chunk at a time (no string of the whole file, and the event loop
 * runs between chunks) to a temporary file, flushed, then renamed over the old one; it is read a
 * line at a time and checked strictly, so a corrupt or truncated file is a clear `PERSIST_FAILED`
 * error, never a crash later.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { nanoid } from 'nanoid';
import superjson from 'superjson';
import { z } from 'zod';
import { BusError, summarizeIssues, toIssues } from '../errors.js';
import { decode, encode, MAX_MAX_DEPTH } from '../protocol/codec.js';

/** The snapshot format's name and version, the first fields of every file. */
const FORMAT = 'clusterbus.store';
const VERSION = 2;
/** The version before: one superjson document (still read, never written). */
const LEGACY_VERSION = 1;
/** How much text is written at once, in characters (about bytes). */
const CHUNK_CHARS = 1 << 20;
/** The temporary files of one write: `<file>.<10 nanoid characters>.tmp`. */
const TEMP_ID_LENGTH = 10;

/** One entry: key, value as kept, revision, expiry (epoch ms) or null. */
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
const Header = z.object({
  format: z.literal(FORMAT),
  version: z.literal(VERSION),
  savedAt: z.number(),
  token: count,
  stores: z.record(z.string(), z.object({ revision: count, entries: count })),
});
/** An entry line: store, key, revision, expiry, the encoded value's `p` and (optional) `q`. */
const ROW = [
  z.string(),
  z.string(),
  z.number().int().positive(),
  z.number().nullable(),
  z.unknown(),
] as const;
const Row = z.union([z.tuple(ROW), z.tuple([...ROW, z.unknown()])]);
const Legacy = z.object({
  format: z.literal(FORMAT),
  version: z.literal(LEGACY_VERSION),
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

// ------------------------------------------------------------------ encoding

/**
 * The lines of a snapshot (without line breaks), made one at a time as they are asked for.
 *
 * @throws {@link BusError} `PERSIST_FAILED` naming `file`, the store and the key, for a value the
 *   codec cannot encode (the store's own checks keep such values out; this is the last guard).
 */
export function* snapshotLines(data: SnapshotData, file = 'snapshot'): Generator<string> {
  const stores: Record<string, { revision: number; entries: number }> = {};
  for (const [name, store] of Object.entries(data.stores)) {
    define(stores, name, { revision: store.revision, entries: store.entries.length });
  }
  yield JSON.stringify({
    format: FORMAT,
    version: VERSION,
    savedAt: data.savedAt,
    token: data.token,
    stores,
  });
  for (const [name, store] of Object.entries(data.stores)) {
    for (const [key, value, revision, expiresAt] of store.entries) {
      let encoded: { p?: unknown; q?: unknown };
      try {
        // Checked against the bus's limits when written: here, any depth the codec can carry.
        encoded = encode(value, Number.POSITIVE_INFINITY, MAX_MAX_DEPTH);
      } catch (cause) {
        throw new BusError(
          'PERSIST_FAILED',
          `store snapshot '${file}': store '${name}' key '${key}' holds a value that cannot be encoded: ${(cause as Error).message}`,
          { cause },
        );
      }
      const row: unknown[] = [name, key, revision, expiresAt, encoded.p];
      if (encoded.q !== undefined) row.push(encoded.q);
      yield JSON.stringify(row);
    }
  }
}

/** Serializes a snapshot as one text (tests; the writer streams {@link snapshotLines}). */
export function encodeSnapshot(data: SnapshotData): string {
  let text = '';
  for (const line of snapshotLines(data)) text += `${line}\n`;
  return text;
}

// ------------------------------------------------------------------ decoding

/** Reads a snapshot a line at a time; {@link finish} checks that nothing is missing. */
class SnapshotReader {
  private lineNo = 0;
  private header: z.output<typeof Header> | undefined;
  private legacy: SnapshotData | undefined;
  private readonly stores: Record<string, { revision: number; entries: SnapshotEntry[] }> =
    Object.create(null);

  constructor(private readonly file: string) {}

  line(text: string): void {
    this.lineNo++;
    if (text.length === 0) return;
    if (this.legacy !== undefined) throw this.corrupt('text after the end of the snapshot');
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (cause) {
      throw this.corrupt(`not valid JSON: truncated or overwritten? ${(cause as Error).message}`, {
        cause,
      });
    }
    if (this.header === undefined) this.start(raw, text);
    else this.entry(raw);
  }

  private start(raw: unknown, text: string): void {
    if (typeof raw === 'object' && raw !== null && Object.hasOwn(raw, 'json')) {
      this.legacy = decodeLegacy(text, this.file);
      return;
    }
    const parsed = Header.safeParse(raw);
    if (!parsed.success) throw notASnapshot(this.file, VERSION, parsed.error.issues);
    this.header = parsed.data;
    for (const [name, store] of Object.entries(parsed.data.stores)) {
      define(this.stores, name, { revision: store.revision, entries: [] });
    }
  }

  private entry(raw: unknown): void {
    const parsed = Row.safeParse(raw);
    if (!parsed.success) {
      throw this.corrupt(`not an entry: ${summarizeIssues(parsed.error.issues, 'entry')}`, {
        issues: toIssues(parsed.error.issues),
      });
    }
    const [name, key, revision, expiresAt, p] = parsed.data;
    const store = Object.hasOwn(this.stores, name) ? this.stores[name] : undefined;
    if (store === undefined) throw this.corrupt(`an entry of store '${name}', not in the header`);
    if (revision > store.revision) throw inconsistent(this.file, name, key, revision, store);
    let value: unknown;
    try {
      value = parsed.data.length === 6 ? decode({ p, q: parsed.data[5] }) : p;
    } catch (cause) {
      throw this.corrupt(`store '${name}' key '${key}': the value cannot be decoded`, { cause });
    }
    store.entries.push([key, value, revision, expiresAt]);
  }

  /** The snapshot read. Throws `PERSIST_FAILED` if it is empty or has fewer entries than said. */
  finish(): SnapshotData {
    if (this.legacy !== undefined) return this.legacy;
    const header = this.header;
    if (header === undefined) throw this.corrupt('the file is empty: truncated?');
    for (const [name, store] of Object.entries(header.stores)) {
      const found = this.stores[name]?.entries.length ?? 0;
      if (found !== store.entries) {
        throw this.corrupt(
          `truncated? store '${name}' should have ${store.entries} entries, the file has ${found}`,
        );
      }
    }
    return { savedAt: header.savedAt, token: header.token, stores: this.stores };
  }

  private corrupt(why: string, options: ConstructorParameters<typeof BusError>[2] = {}): BusError {
    return new BusError(
      'PERSIST_FAILED',
      `store snapshot '${this.file}' is corrupt (${why}) at line ${this.lineNo}. Move it away to start with empty stores.`,
      options,
    );
  }
}

function notASnapshot(file: string, version: number, issues: z.core.$ZodIssue[]): BusError {
  return new BusError(
    'PERSIST_FAILED',
    `store snapshot '${file}' is not a clusterbus store snapshot of version ${version}: ${summarizeIssues(issues, 'snapshot')}. Move it away to start with empty stores.`,
    { issues: toIssues(issues) },
  );
}

function inconsistent(
  file: string,
  name: string,
  key: string,
  revision: number,
  store: { readonly revision: number },
): BusError {
  return new BusError(
    'PERSIST_FAILED',
    `store snapshot '${file}' is inconsistent: store '${name}' key '${key}' has revision ${revision}, after the store's ${store.revision}`,
  );
}

/** A snapshot of the version before (one superjson document). */
function decodeLegacy(text: string, file: string): SnapshotData {
  let raw: unknown;
  try {
    raw = superjson.parse(text);
  } catch (cause) {
    throw new BusError(
      'PERSIST_FAILED',
      `store snapshot '${file}' is corrupt (not valid superjson: truncated or overwritten?): ${(cause as Error).message}. Move it away to start with empty stores.`,
      { cause },
    );
  }
  const parsed = Legacy.safeParse(raw);
  if (!parsed.success) throw notASnapshot(file, LEGACY_VERSION, parsed.error.issues);
  for (const [name, store] of Object.entries(parsed.data.stores)) {
    for (const [key, , revision] of store.entries) {
      if (revision > store.revision) throw inconsistent(file, name, key, revision, store);
    }
  }
  const { savedAt, token, stores } = parsed.data;
  return { savedAt, token, stores: stores as SnapshotData['stores'] };
}

/**
 * Reads a snapshot text back.
 *
 * @throws {@link BusError} `PERSIST_FAILED` naming `file` and what is wrong (not JSON, e.g.
 *   truncated; not a clusterbus snapshot; another version; an entry newer than its store; fewer
 *   entries than its header says).
 */
export function decodeSnapshot(text: string, file: string): SnapshotData {
  const reader = new SnapshotReader(file);
  for (const line of text.split('\n')) reader.line(line);
  return reader.finish();
}

/**
 * Loads the snapshot at `file`, a line at a time: `undefined` if there is none (an empty start).
 *
 * @throws {@link BusError} `PERSIST_FAILED` when it cannot be read or decoded.
 */
export async function readSnapshot(file: string): Promise<SnapshotData | undefined> {
  const reader = new SnapshotReader(file);
  const input = createReadStream(file, { encoding: 'utf8' });
  try {
    for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
      reader.line(line);
    }
  } catch (cause) {
    if (cause instanceof BusError) throw cause;
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BusError(
      'PERSIST_FAILED',
      `store snapshot '${file}' could not be read: ${(cause as Error).message}`,
      { cause },
    );
  } finally {
    input.destroy();
  }
  return reader.finish();
}

// ------------------------------------------------------------------ writing

/** A new temporary file name for a write of `file`. */
function tempName(file: string): string {
  return `${file}.${nanoid(TEMP_ID_LENGTH)}.tmp`;
}

/**
 * Gets `file`'s directory ready at start, before anything is written: creates it, removes the
 * temporary files a primary killed mid-write left there (`<file>.<id>.tmp`, nothing else), and
 * checks that a file can be created there.
 *
 * @returns how many leftover temporary files were removed.
 * @throws {@link BusError} `PERSIST_FAILED` naming `file` when the directory cannot be created or
 *   written, or `file` is a directory.
 */
export async function preparePersistDir(file: string): Promise<number> {
  const dir = dirname(file);
  const failed = (what: string, cause: unknown) =>
    new BusError(
      'PERSIST_FAILED',
      `store snapshot '${file}' cannot be written: ${what}: ${(cause as Error).message}`,
      { cause },
    );
  try {
    await mkdir(dir, { recursive: true });
  } catch (cause) {
    throw failed(`its directory '${dir}' cannot be created`, cause);
  }
  const stats = await stat(file).catch(() => undefined);
  if (stats?.isDirectory() === true) {
    throw new BusError('PERSIST_FAILED', `store snapshot '${file}' is a directory, not a file`);
  }
  let removed = 0;
  const base = basename(file);
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!isTempOf(base, name)) continue;
    try {
      await unlink(join(dir, name));
      removed++;
    } catch {
      // Gone meanwhile, or not a file: not ours to force.
    }
  }
  const probe = tempName(file);
  try {
    const handle = await open(probe, 'wx');
    await handle.close();
    await unlink(probe);
  } catch (cause) {
    await unlink(probe).catch(() => {});
    throw failed(`no file can be created in '${dir}'`, cause);
  }
  return removed;
}

/** Whether `name` is a temporary file of a write of a file named `base`. */
function isTempOf(base: string, name: string): boolean {
  if (!name.startsWith(`${base}.`) || !name.endsWith('.tmp')) return false;
  const id = name.slice(base.length + 1, -'.tmp'.length);
  return id.length === TEMP_ID_LENGTH && /^[A-Za-z0-9_-]+$/.test(id);
}

/**
 * Writes `lines` to `file` atomically: a chunk at a time to a temporary file next to it, flushed
 * to disk, then renamed over `file` (and the directory flushed, so the rename survives a power
 * cut). A reader sees the old snapshot or the new one, never half of one.
 *
 * @throws {@link BusError} `PERSIST_FAILED` when it cannot be written, or a line cannot be made.
 */
export async function writeSnapshot(file: string, lines: Iterable<string>): Promise<void> {
  // Unique per write: two writes that overlap (the interval's and close's) never share a file.
  const tmp = tempName(file);
  try {
    await mkdir(dirname(file), { recursive: true }); // removed since the start? made again
    const handle = await open(tmp, 'wx');
    try {
      let chunk = '';
      for (const line of lines) {
        chunk += `${line}\n`;
        if (chunk.length >= CHUNK_CHARS) {
          await writeAll(handle, chunk);
          chunk = '';
        }
      }
      if (chunk.length > 0) await writeAll(handle, chunk);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (cause) {
    await unlink(tmp).catch(() => {});
    if (cause instanceof BusError) throw cause;
    throw new BusError(
      'PERSIST_FAILED',
      `store snapshot '${file}' could not be written: ${(cause as Error).message}`,
      { cause },
    );
  }
  await syncDir(dirname(file));
}

async function writeAll(handle: FileHandle, text: string): Promise<void> {
  const bytes = Buffer.from(text, 'utf8');
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/** Flushes a directory's entries (best effort: some platforms cannot open a directory). */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Not supported here (Windows): the rename is as durable as the platform makes it.
  }
}

/**
 * Writes the snapshot of the stores to `file`: every `intervalMs` when something changed since
 * the last one (and none is being written), and once more on close. The stores are captured
 * synchronously by `take` (one consistent cut: entries are never changed in place), then encoded
 * and written in the background. A snapshot that fails, at any step, leaves the state dirty: an
 * interval's is reported and retried at the next interval; the last one makes `close()` reject.
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
      this.save().catch(this.report);
    }, intervalMs);
    this.timer.unref();
  }

  /** Something changed: the next interval writes a snapshot. */
  markDirty(): void {
    this.dirty = true;
  }

  /** Writes a snapshot if something changed (one write at a time); rejects with `PERSIST_FAILED`. */
  private save(): Promise<void> {
    if (this.saving !== undefined) return this.saving;
    if (!this.dirty) return Promise.resolve();
    this.dirty = false;
    const write = (async () => {
      await writeSnapshot(this.file, snapshotLines(this.take(), this.file));
    })();
    this.saving = write.then(
      () => {
        this.saving = undefined;
      },
      (error: unknown) => {
        this.saving = undefined;
        this.dirty = true; // what failed to be written is still to write
        throw error instanceof BusError
          ? error
          : new BusError(
              'PERSIST_FAILED',
              `store snapshot '${this.file}' could not be written: ${String(error)}`,
              { cause: error },
            );
      },
    );
    return this.saving;
  }

  /**
   * Stops the interval and writes a last snapshot if anything changed (or the one before failed).
   *
   * @throws never synchronously; rejects with {@link BusError} `PERSIST_FAILED` when that last
   *   snapshot cannot be written (the file keeps the one before).
   */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.saving?.catch(() => {}); // an interval's write: reported by the interval
    await this.save();
  }
}

/** Sets `record[key]`, `__proto__` included, as an own data property. */
function define<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}
