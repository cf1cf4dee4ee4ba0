/**
 * The hub side: the format of a store snapshot. The file is JSON lines: a header (format,
 * version, when, the fencing token, each store's revision and entry count), then one line per
 * entry (store, key, revision, expiry, and the value as the bus's codec encodes a payload: plain
 * JSON as it is, `__proto__` keys included, or superjson's `json` and `meta`), so a snapshot
 * carries what the wire carries, and every value a store keeps (checked when it is written: see
 * values.ts) can be written and read back. Lines are made one at a time, and read one at a time
 * and checked strictly, so a corrupt or truncated file is a clear `PERSIST_FAILED` error, never a
 * crash later. Format 1 (one superjson document) is still read, never written. The file itself
 * is written and read by persist.ts.
 *
 * @module
 */
import superjson from 'superjson';
import { z } from 'zod';
import { BusError, summarizeIssues, toIssues } from '../errors.js';
import { decode, encode, MAX_MAX_DEPTH } from '../protocol/codec.js';

/** The snapshot format's name and version, the first fields of every file. */
const FORMAT = 'clusterbus.store';
const VERSION = 2;
/** The version before: one superjson document (still read, never written). */
const LEGACY_VERSION = 1;

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

/**
 * @internal Reads a snapshot a line at a time; {@link finish} checks that nothing is missing.
 */
export class SnapshotReader {
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

/** Sets `record[key]`, `__proto__` included, as an own data property. */
function define<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}
