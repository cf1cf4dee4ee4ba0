/**
 * The hub side: snapshots of the stores on disk, in the format of snapshot.ts. A snapshot is
 * written a chunk at a time (no string of the whole file, and the event loop runs between
 * chunks) to a temporary file, flushed, then renamed over the old one; it is read a line at a
 * time. The writer keeps a dirty flag and writes every interval, and once more on close.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { nanoid } from 'nanoid';
import { BusError } from '../errors.js';
import { type SnapshotData, SnapshotReader, snapshotLines } from './snapshot.js';

export {
  decodeSnapshot,
  encodeSnapshot,
  type SnapshotData,
  type SnapshotEntry,
  snapshotLines,
} from './snapshot.js';

/** How much text is written at once, in characters (about bytes). */
const CHUNK_CHARS = 1 << 20;
/** The temporary files of one write: `<file>.<10 nanoid characters>.tmp`. */
const TEMP_ID_LENGTH = 10;

// ------------------------------------------------------------------ reading

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
      // A write still under way is reported by the tick that started it, once.
      if (this.saving !== undefined) return;
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
