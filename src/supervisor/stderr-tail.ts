/**
 * What becomes of a worker's stderr: the primary pipes it, forwards every chunk (to its own
 * stderr unchanged, or to the line splitter of worker-logs.ts, which decides how worker output is
 * shown), and keeps the last lines (bounded), so that a worker that dies while the cluster starts
 * can be explained in the rejection.
 *
 * @module
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/** At most this many lines of a worker's stderr are reported (`STARTUP_FAILED`'s `data.stderr`). */
export const STDERR_TAIL_LINES = 20;
/** At most this many bytes (UTF-8) of a worker's stderr are kept. */
export const STDERR_TAIL_BYTES = 4_096;
/** Text held before trimming, in UTF-16 code units: twice the byte bound, so trims are rare. */
const HOLD_CHARS = 2 * STDERR_TAIL_BYTES;
/** How long {@link StderrTail.end} waits for the pipe to close after the worker exited, in ms. */
const END_GRACE_MS = 500;

/** @internal One worker's stderr: forwarded as it comes, its tail kept until {@link end}. */
export class StderrTail {
  private text = '';
  private readonly decoder = new StringDecoder('utf8');
  private ending: Promise<string> | undefined;
  /** The tail was handed over by {@link end}: later output is forwarded, not kept. */
  private dropped = false;

  /**
   * @param stream - the worker's piped stderr (`worker.process.stderr`); `null` if not piped.
   * @param out - where every chunk is forwarded, unchanged (with `logs: 'prefix' | 'json'`, the
   *   line splitter of worker-logs.ts). @default process.stderr
   */
  constructor(
    private readonly stream: Readable | null,
    private readonly out: { write(chunk: Buffer | string): unknown } = process.stderr,
  ) {
    if (stream === null) return;
    stream.on('data', this.onData);
    // A broken pipe must not crash the primary: the worker's exit says what happened.
    stream.on('error', () => {});
  }

  private readonly onData = (chunk: Buffer | string): void => {
    this.out.write(chunk);
    if (this.dropped) return;
    this.text += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    if (this.text.length > HOLD_CHARS) {
      // Cut, then skip a low surrogate left without its pair.
      const cut = this.text.slice(-HOLD_CHARS);
      this.text = /^[\uDC00-\uDFFF]/.test(cut) ? cut.slice(1) : cut;
    }
  };

  /** The end of what was written so far: whole lines within {@link STDERR_TAIL_BYTES}. */
  kept(): string {
    return lastLines(this.text, Number.POSITIVE_INFINITY, STDERR_TAIL_BYTES);
  }

  /**
   * Resolves with the final {@link kept} text once the pipe has closed (or {@link END_GRACE_MS}
   * after this call, if something else holds it open, e.g. a child of the worker), then drops
   * it. Call it when the worker has exited; the stream keeps being forwarded until it closes.
   */
  end(): Promise<string> {
    this.ending ??= new Promise<string>((resolve) => {
      const stream = this.stream;
      const finish = () => {
        clearTimeout(timer);
        stream?.off('close', finish);
        const tail = this.kept();
        this.text = '';
        this.dropped = true;
        resolve(tail);
      };
      const timer = setTimeout(finish, END_GRACE_MS);
      timer.unref();
      if (stream === null || stream.destroyed || stream.closed) finish();
      else stream.once('close', finish);
    });
    return this.ending;
  }
}

/**
 * The last `maxLines` lines of `text` (a trailing newline does not make an empty last line),
 * within `maxBytes` of UTF-8: whole lines when they fit, else the end of the last one.
 */
export function lastLines(text: string, maxLines: number, maxBytes: number): string {
  const lines = text.replace(/\r?\n$/, '').split(/\r?\n/);
  const kept: string[] = [];
  let bytes = 0;
  for (let i = lines.length - 1; i >= 0 && kept.length < maxLines; i--) {
    const line = lines[i]!;
    const size = Buffer.byteLength(line) + (kept.length > 0 ? 1 : 0);
    if (bytes + size > maxBytes) {
      if (kept.length === 0) kept.unshift(tailBytes(line, maxBytes));
      break;
    }
    bytes += size;
    kept.unshift(line);
  }
  return kept.join('\n');
}

/** The end of `line` within `maxBytes` of UTF-8, cut at a character boundary. */
function tailBytes(line: string, maxBytes: number): string {
  const buffer = Buffer.from(line);
  let start = buffer.length - maxBytes;
  // Skip continuation bytes (10xxxxxx): start on a character.
  while (start < buffer.length && (buffer[start]! & 0xc0) === 0x80) start++;
  return buffer.subarray(start).toString();
}

/** A stack frame (`    at f (file:1:2)`), Node's `[... lines matching original stack trace ...]`. */
const FRAME = /^\s+(at\s|\[\.\.\. )/;
/** Node's last line after an uncaught error: `Node.js v20.11.0`. */
const NODE_VERSION = /^Node\.js v\d/;
/** The line that names an error: `Error: …`, `TypeError [ERR_X]: …`, `SyntaxError: …`. */
const ERROR_LINE = /^\s*(?:Uncaught )?(?:[A-Z]\w*)?(?:Error|Exception)\b(?: \[[\w-]+\])?:/;

/**
 * The lines of stderr `text` a person reads first: stack frames, blank lines and Node's version
 * line left out.
 */
export function readableLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .filter((line) => line.trim() !== '' && !FRAME.test(line) && !NODE_VERSION.test(line));
}

/** The last line of `text` that names an error (`Error: …`), if any. */
export function errorLine(text: string): string | undefined {
  return readableLines(text)
    .filter((line) => ERROR_LINE.test(line))
    .at(-1)
    ?.trim();
}
