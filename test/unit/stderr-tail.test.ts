/**
 * A worker's stderr as the primary handles it: every chunk forwarded unchanged, a bounded tail
 * kept until the worker is gone, and the lines that explain a failed start picked out.
 */
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  errorLine,
  lastLines,
  readableLines,
  STDERR_TAIL_BYTES,
  StderrTail,
} from '../../src/supervisor/stderr-tail.js';

/** A tail over a fresh pipe, forwarding to a writable that records every chunk as given. */
function piped(): {
  readonly stream: PassThrough;
  readonly chunks: Buffer[];
  readonly tail: StderrTail;
} {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  const stream = new PassThrough();
  return { stream, chunks, tail: new StderrTail(stream, out) };
}

describe('StderrTail', () => {
  it('forwards every chunk unchanged, a multibyte character split across chunks included', async () => {
    const { stream, chunks, tail } = piped();
    const bytes = Buffer.from('before é after\nnext line\n');
    const split = bytes.indexOf(0xa9); // the second byte of 'é'
    const parts = [bytes.subarray(0, split), bytes.subarray(split), Buffer.from('last')];
    for (const part of parts) stream.write(part);
    stream.end();
    const kept = await tail.end();
    expect(Buffer.concat(chunks)).toEqual(Buffer.concat(parts));
    expect(chunks).toHaveLength(parts.length);
    expect(kept).toBe('before é after\nnext line\nlast');
  });

  it('keeps a bounded tail: at most 4 KiB of whole lines, however much is written', async () => {
    const { stream, tail } = piped();
    for (let i = 0; i < 10_000; i++) stream.write(`line ${i} ${'x'.repeat(50)}\n`);
    stream.end();
    const kept = await tail.end();
    expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(STDERR_TAIL_BYTES);
    expect(Buffer.byteLength(kept)).toBeGreaterThan(STDERR_TAIL_BYTES - 100);
    expect(kept.split('\n').at(-1)).toBe(`line 9999 ${'x'.repeat(50)}`);
    expect(kept.startsWith('line ')).toBe(true); // a whole first line
  });

  it('drops its tail at end(): what came before the pipe closed is handed over, then nothing is kept', async () => {
    const { stream, chunks, tail } = piped();
    stream.write('first\n');
    const ending = tail.end();
    stream.end('second\n');
    expect(await ending).toBe('first\nsecond');
    expect(tail.kept()).toBe('');
    expect(Buffer.concat(chunks).toString()).toBe('first\nsecond\n');
  });

  it('resolves end() after a grace period when the pipe stays open (a child of the worker holds it), then forwards without keeping', async () => {
    const { stream, chunks, tail } = piped();
    stream.write('still open\n');
    const t0 = performance.now();
    expect(await tail.end()).toBe('still open');
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(400);
    expect(elapsed).toBeLessThan(5_000);
    stream.write('later\n');
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(chunks).toString()).toBe('still open\nlater\n');
    expect(tail.kept()).toBe('');
    stream.destroy();
  });

  it('resolves end() at once for a stream already closed, or none', async () => {
    const { stream, tail } = piped();
    stream.destroy();
    await new Promise((r) => setImmediate(r));
    const t0 = performance.now();
    expect(await tail.end()).toBe('');
    expect(await new StderrTail(null).end()).toBe('');
    expect(performance.now() - t0).toBeLessThan(300);
  });
});

describe('lastLines', () => {
  it('takes the last lines within the byte bound, cutting one long line at a character', () => {
    expect(lastLines('a\nb\nc\n', 2, 100)).toBe('b\nc');
    expect(lastLines('a\nb\nc', 5, 3)).toBe('b\nc');
    expect(lastLines('ééé', 1, 3)).toBe('é');
    expect(lastLines('', 20, 100)).toBe('');
  });
});

describe('the lines that explain a failed start', () => {
  const uncaught = [
    '/app/worker.js:2',
    "throw new Error('boom');",
    '^',
    '',
    'Error: boom',
    '    at file:///app/worker.js:2:7',
    '    [... lines matching original stack trace ...]',
    '',
    'Node.js v20.20.2',
  ].join('\n');

  it('leaves out stack frames, blank lines and the Node.js version line', () => {
    expect(readableLines(uncaught)).toEqual([
      '/app/worker.js:2',
      "throw new Error('boom');",
      '^',
      'Error: boom',
    ]);
  });

  it('finds the line that names the error', () => {
    expect(errorLine(uncaught)).toBe('Error: boom');
    expect(errorLine("Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'x'\n}")).toBe(
      "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'x'",
    );
    expect(errorLine('SyntaxError: Unexpected token')).toBe('SyntaxError: Unexpected token');
    expect(errorLine('fatal: no database\n')).toBeUndefined();
  });
});
