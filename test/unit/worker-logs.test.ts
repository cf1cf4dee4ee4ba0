/**
 * The line splitter of `logs: 'prefix' | 'json'`, without a process: lines whole across chunks,
 * `\r\n` and `\n`, a line longer than the bound in pieces cut on characters (the later ones marked
 * as continuations), a line exactly at the bound in one piece, UTF-8 split across chunks, the
 * partial last line at the end; and the two formats.
 */
import type { Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  attachWorkerOutput,
  formatLine,
  LineSplitter,
  type LogOutput,
  MAX_LINE_BYTES,
} from '../../src/supervisor/worker-logs.js';

function split(chunks: (string | Buffer)[], max?: number): Array<[string, boolean]> {
  const out: Array<[string, boolean]> = [];
  const s = new LineSplitter((line, continued) => out.push([line, continued]), max);
  for (const c of chunks) s.push(c);
  s.end();
  return out;
}

describe('LineSplitter', () => {
  it('joins a line written in pieces and splits chunks holding several', () => {
    expect(split(['B-1\nB', '-2\r\nB-', '3', '\n', '\n', 'tail'])).toEqual([
      ['B-1', false],
      ['B-2', false],
      ['B-3', false],
      ['', false],
      ['tail', false],
    ]);
  });

  it('cuts a line over the bound into pieces of at most the bound, the later ones continued', () => {
    expect(split(['abcdefghijklmnopqrstuvwxyz\nnext\n'], 10)).toEqual([
      ['abcdefghij', false],
      ['klmnopqrst', true],
      ['uvwxyz', true],
      ['next', false],
    ]);
  });

  it('keeps a line exactly at the bound in one piece, with no empty continuation', () => {
    expect(split(['0123456789\n'], 10)).toEqual([['0123456789', false]]);
    expect(split(['01234567890\n'], 10)).toEqual([
      ['0123456789', false],
      ['0', true],
    ]);
  });

  it('cuts on characters, never inside a UTF-8 sequence, even when a chunk splits one', () => {
    const euro = Buffer.from('€€€€\n'); // 3 bytes each
    const out = split([euro.subarray(0, 4), euro.subarray(4)], 7);
    expect(out).toEqual([
      ['€€', false],
      ['€€', true],
    ]);
    for (const [line] of out) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(7);
  });

  it('emits the partial last line at the end, and nothing for an empty stream', () => {
    expect(split(['no newline'])).toEqual([['no newline', false]]);
    expect(split([])).toEqual([]);
    expect(split(['done\n'])).toEqual([['done', false]]);
  });

  it('bounds what it holds by default at 1 MiB', () => {
    expect(MAX_LINE_BYTES).toBe(1_048_576);
    const out = split(['x'.repeat(2_200_000)]);
    expect(out.map(([l, c]) => [l.length, c])).toEqual([
      [1_048_576, false],
      [1_048_576, true],
      [102_848, true],
    ]);
  });
});

describe('formatLine', () => {
  const source = { slot: 2, workerId: 7, pid: 1234 };
  it("prefix: '[slot 2 · worker 7] line', a continuation marked with '…'", () => {
    expect(formatLine('prefix', source, 'stdout', 'hello', false)).toBe(
      '[slot 2 · worker 7] hello\n',
    );
    expect(formatLine('prefix', source, 'stderr', 'more', true)).toBe(
      '[slot 2 · worker 7] … more\n',
    );
  });

  it('json: one object per line, continued only on continuations', () => {
    const o = JSON.parse(formatLine('json', source, 'stderr', 'a "quoted"\tline', false));
    expect(o).toEqual({
      time: expect.any(String),
      slot: 2,
      workerId: 7,
      pid: 1234,
      stream: 'stderr',
      line: 'a "quoted"\tline',
    });
    expect(JSON.parse(formatLine('json', source, 'stdout', 'x', true)).continued).toBe(true);
  });
});

/** An output that is full until `drain()` is called. */
class SlowOutput extends EventEmitter implements LogOutput {
  readonly written: string[] = [];
  full = true;
  write(text: string): boolean {
    this.written.push(text);
    return !this.full;
  }
  drain(): void {
    this.full = false;
    this.emit('drain');
  }
}

describe('attachWorkerOutput', () => {
  it("pauses the worker's pipes while the primary's output is full, and resumes them once it drains", async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const worker = { id: 7, process: { pid: 1234, stdout, stderr } } as unknown as Worker;
    const outputs = { stdout: new SlowOutput(), stderr: new SlowOutput() };
    const tail = attachWorkerOutput(worker, 2, 'prefix', outputs);
    stdout.write('one\ntwo\n');
    stderr.write('oops\n');
    await new Promise((r) => setImmediate(r));
    expect(stdout.isPaused()).toBe(true);
    expect(stderr.isPaused()).toBe(true);
    expect(outputs.stdout.written).toEqual([
      '[slot 2 · worker 7] one\n',
      '[slot 2 · worker 7] two\n',
    ]);
    expect(outputs.stderr.written).toEqual(['[slot 2 · worker 7] oops\n']);
    outputs.stdout.drain();
    expect(stdout.isPaused()).toBe(false);
    expect(stderr.isPaused()).toBe(true);
    outputs.stderr.drain();
    stdout.end('last');
    stderr.end();
    // The stderr tail (STARTUP_FAILED's) is kept as ever.
    expect(await tail.end()).toBe('oops');
    await new Promise((r) => setImmediate(r));
    expect(outputs.stdout.written.at(-1)).toBe('[slot 2 · worker 7] last\n');
  });
});
