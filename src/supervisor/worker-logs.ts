/**
 * How worker output reaches the primary's stdout and stderr (`startCluster({ logs })`):
 * `'inherit'` leaves stdout inherited and forwards stderr chunk by chunk, as it comes; `'prefix'`
 * and `'json'` pipe both streams, cut them into lines (a partial line waits for its end, per
 * stream) and print each line whole, labelled with the worker's slot and id. stdout lines go to
 * the primary's stdout, stderr lines to its stderr. A line longer than {@link MAX_LINE_BYTES} is
 * printed in pieces of at most that size, each piece after the first marked as a continuation; a
 * last line without its newline is printed when the stream ends.
 *
 * @module
 */
import type { Worker } from 'node:cluster';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { LogsMode } from './ops-options.js';
import { StderrTail } from './stderr-tail.js';

/** The longest piece of a line held or printed, in bytes of UTF-8 (1 MiB). */
export const MAX_LINE_BYTES = 1_048_576;

/** Which stream a line came from. */
export type LogStream = 'stdout' | 'stderr';

/** @internal The `stdio` of a forked worker in `mode` (stderr is always piped, for its tail). */
export function workerStdio(
  mode: LogsMode,
): readonly ['inherit', 'inherit' | 'pipe', 'pipe', 'ipc'] {
  return ['inherit', mode === 'inherit' ? 'inherit' : 'pipe', 'pipe', 'ipc'];
}

/**
 * @internal Cuts one stream's text into lines: {@link push} chunks, {@link end} at the stream's
 * end. Calls `emit(line, continued)` per line (without its `\n` or `\r\n`), `continued` for a
 * piece that carries on the one before (a line cut at `maxLineBytes`).
 */
export class LineSplitter {
  private pending = '';
  private pendingBytes = 0;
  /** The piece held continues one already emitted. */
  private continued = false;
  private readonly decoder = new StringDecoder('utf8');

  /** @param maxLineBytes - at least 4 (the longest UTF-8 character). */
  constructor(
    private readonly emit: (line: string, continued: boolean) => void,
    private readonly maxLineBytes: number = MAX_LINE_BYTES,
  ) {
    if (!(maxLineBytes >= 4)) throw new RangeError('LineSplitter: maxLineBytes must be >= 4');
  }

  push(chunk: Buffer | string): void {
    let text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    let newline = text.indexOf('\n');
    while (newline !== -1) {
      this.add(text.slice(0, newline));
      this.flush();
      text = text.slice(newline + 1);
      newline = text.indexOf('\n');
    }
    this.add(text);
  }

  /** The stream ended: a last line without its newline is emitted. */
  end(): void {
    this.add(this.decoder.end());
    if (this.pending !== '') this.flush();
  }

  /** Adds text that holds no newline, emitting pieces of `maxLineBytes` as they fill. */
  private add(text: string): void {
    if (text === '') return;
    this.pending += text;
    this.pendingBytes += Buffer.byteLength(text);
    if (this.pendingBytes <= this.maxLineBytes) return;
    const bytes = Buffer.from(this.pending);
    let start = 0;
    while (bytes.length - start > this.maxLineBytes) {
      let cut = start + this.maxLineBytes;
      // Cut on a character: not before a continuation byte (10xxxxxx).
      while ((bytes[cut]! & 0xc0) === 0x80) cut--;
      this.emit(bytes.subarray(start, cut).toString(), this.continued);
      this.continued = true;
      start = cut;
    }
    this.pending = bytes.subarray(start).toString();
    this.pendingBytes = bytes.length - start;
  }

  /** Emits what is held as the end of a line (a newline came, or the stream ended). */
  private flush(): void {
    const text = this.pending.endsWith('\r') ? this.pending.slice(0, -1) : this.pending;
    // A line cut exactly at the bound has an empty end: it was all emitted.
    if (!(this.continued && text === '')) this.emit(text, this.continued);
    this.pending = '';
    this.pendingBytes = 0;
    this.continued = false;
  }
}

/** Who a line is from. */
export interface LineSource {
  readonly slot: number;
  readonly workerId: number;
  readonly pid: number | undefined;
}

/** @internal One printed line, as `mode` writes it (`'inherit'` is never framed). */
export function formatLine(
  mode: 'prefix' | 'json',
  source: LineSource,
  stream: LogStream,
  line: string,
  continued: boolean,
): string {
  if (mode === 'prefix') {
    return `[slot ${source.slot} · worker ${source.workerId}]${continued ? ' …' : ''} ${line}\n`;
  }
  return `${JSON.stringify({
    time: new Date().toISOString(),
    slot: source.slot,
    workerId: source.workerId,
    pid: source.pid ?? null,
    stream,
    line,
    ...(continued ? { continued: true } : {}),
  })}\n`;
}

/** A stream the framed lines are written to (the primary's stdout or stderr). */
export interface LogOutput {
  /** Returns false when its buffer is full: the workers' pipes are paused until `'drain'`. */
  write(text: string): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/** Where the framed lines go: the primary's own streams by default. */
export interface LogOutputs {
  readonly stdout: LogOutput;
  readonly stderr: LogOutput;
}

/** Per output: the worker pipes paused until it drains (one `'drain'` listener for all). */
const paused = new WeakMap<LogOutput, Set<Readable>>();

/**
 * Writes `text` to `out`; when `out` is full, pauses `from` (a worker's pipe) until `out` drains,
 * so what waits is bounded by the pipes, not held in the primary's memory.
 */
function relay(out: LogOutput, text: string, from: Readable): void {
  if (out.write(text)) return;
  let waiting = paused.get(out);
  if (waiting === undefined) {
    const set = new Set<Readable>();
    waiting = set;
    paused.set(out, set);
    out.once('drain', () => {
      paused.delete(out);
      for (const stream of set) stream.resume();
    });
  }
  waiting.add(from);
  from.pause();
}

/**
 * @internal Wires a forked worker's output in `mode` and returns its stderr tail (see
 * stderr-tail.ts), which keeps working in every mode.
 */
export function attachWorkerOutput(
  worker: Worker,
  slot: number,
  mode: LogsMode,
  outputs: LogOutputs = process,
): StderrTail {
  const stderr = worker.process.stderr;
  if (mode === 'inherit' || stderr === null) return new StderrTail(stderr);
  const source: LineSource = { slot, workerId: worker.id, pid: worker.process.pid };
  const framed = (stream: LogStream, from: Readable) => {
    const splitter = new LineSplitter((line, continued) =>
      relay(outputs[stream], formatLine(mode, source, stream, line, continued), from),
    );
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      splitter.end();
    };
    from.once('end', end);
    from.once('close', end);
    return splitter;
  };
  const stdout = worker.process.stdout;
  if (stdout !== null) {
    const splitter = framed('stdout', stdout);
    stdout.on('data', (chunk: Buffer) => splitter.push(chunk));
    stdout.on('error', () => {});
  }
  const errSplitter = framed('stderr', stderr);
  return new StderrTail(stderr, { write: (chunk: Buffer | string) => errSplitter.push(chunk) });
}
