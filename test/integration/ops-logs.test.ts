/**
 * `logs: 'inherit' | 'prefix' | 'json'` with real workers writing long lines (150 KiB, multibyte
 * characters included) and partial lines in small delayed chunks, two workers at once on the same
 * stream: every line arrives whole and labelled, stdout lines on the primary's stdout and stderr
 * lines on its stderr; a long line (150 KiB) comes whole, never cut (pieces only past 1 MiB); the partial
 * last line of each stream is printed when the worker exits; the STARTUP_FAILED stderr tail still
 * works.
 */
import { describe, expect, it, vi } from 'vitest';
import type { BusError } from '../../src/index.js';
import { MAX_LINE_BYTES } from '../../src/supervisor/worker-logs.js';
import { contract } from './fixtures/ops-contract.js';
import { forkPrimary } from './fixtures/ops-helpers.js';
import { fixture, forkedPids, isAlive, rejection, start } from './fixtures/supervisor-helpers.js';

interface Info {
  readonly id: number;
  readonly slot: number;
  readonly pid: number;
}

/** 12 bytes of UTF-8 in 4 code points of 1, 2, 3 and 4 bytes. */
const UNIT = 'abcé€😀';
/** A line of 153,600 bytes, printed whole (under the 1 MiB bound). */
const LONG = UNIT.repeat(12_800);

/** `text` in chunks of `size` code points (never a surrogate pair cut in two). */
function chunks(text: string, size: number): string[] {
  const points = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < points.length; i += size) out.push(points.slice(i, i + size).join(''));
  return out;
}

/** What slot 0 writes to a stream: partial lines in small delayed chunks, then the long line. */
const SMALL = ['hel', 'lo wor', 'ld\nsec', 'ond\r\n'];
/** What slot 1 writes meanwhile: 200 short lines, cut mid-line into chunks of 7 characters. */
const MANY = chunks(Array.from({ length: 200 }, (_, i) => `B-${i}\n`).join(''), 7);

/** One printed line, parsed: who, which piece, what. */
interface Printed {
  readonly workerId: number;
  readonly slot: number;
  readonly continued: boolean;
  readonly line: string;
  readonly stream?: string;
  readonly pid?: number | null;
  readonly time?: string;
}

function parsePrefix(text: string): Printed[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m = /^\[slot (\d+) · worker (\d+)\]( …)? (.*)$/s.exec(l);
      if (m === null) throw new Error(`not a prefixed line: ${l.slice(0, 80)}`);
      return {
        slot: Number(m[1]),
        workerId: Number(m[2]),
        continued: m[3] !== undefined,
        line: m[4]!,
      };
    });
}

function parseJson(text: string): Printed[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const o = JSON.parse(l) as Printed & { continued?: boolean };
      return { ...o, continued: o.continued === true };
    });
}

/** The lines of `workerId`, pieces joined back (a continued piece carries on the one before). */
function linesOf(printed: readonly Printed[], workerId: number): string[] {
  const lines: string[] = [];
  for (const p of printed.filter((x) => x.workerId === workerId)) {
    if (p.continued) lines[lines.length - 1] += p.line;
    else lines.push(p.line);
  }
  return lines;
}

/** Runs the writes of both workers at once on `stream`, then closes; returns what was printed. */
async function run(mode: 'inherit' | 'prefix' | 'json') {
  const primary = forkPrimary({
    args: ['--workers', '2'],
    env: { OPS_PARTIAL_AT_EXIT: 'partial last line' },
    options: { logs: mode },
  });
  const workers = (await primary.next('started')).workers as Info[];
  const write = (slot: number, stream: string, parts: string[], delayMs: number) =>
    primary.command({ cmd: 'write', slot, stream, chunks: parts, delayMs });
  const both = async (stream: string) => {
    const answers = await Promise.all([
      write(0, stream, [...SMALL, ...chunks(`${LONG}\n`, 3_001)], 2),
      write(1, stream, MANY, 1),
    ]);
    for (const a of answers) expect(a.ok).toBe(true);
  };
  if (mode === 'inherit') {
    await write(0, 'stdout', SMALL, 20);
    await write(0, 'stderr', SMALL, 20);
  } else {
    await both('stdout');
    await both('stderr');
  }
  primary.proc.send({ cmd: 'close' });
  await primary.next('closed');
  expect(await primary.exited).toEqual({ code: 0, signal: null });
  await primary.closed; // every byte it printed has been read
  for (const w of workers) expect(isAlive(w.pid)).toBe(false);
  return { workers, stdout: primary.stdout(), stderr: primary.stderr() };
}

/** The checks shared by 'prefix' and 'json': whole lines, per worker, per stream. */
function expectWholeLines(
  printed: { stdout: Printed[]; stderr: Printed[] },
  workers: readonly Info[],
) {
  const [w0, w1] = [workers[0]!, workers[1]!];
  for (const stream of ['stdout', 'stderr'] as const) {
    const lines = printed[stream];
    for (const p of lines) {
      expect(p.slot).toBe(p.workerId === w0.id ? 0 : 1);
      expect(Buffer.byteLength(p.line)).toBeLessThanOrEqual(MAX_LINE_BYTES);
    }
    expect(linesOf(lines, w0.id)).toEqual([
      'hello world',
      'second',
      LONG,
      `partial last line (${stream})`,
    ]);
    expect(linesOf(lines, w1.id)).toEqual([
      ...Array.from({ length: 200 }, (_, i) => `B-${i}`),
      `partial last line (${stream})`,
    ]);
    // The long line: one printed line, whole (no continuation).
    const own = lines.filter((p) => p.workerId === w0.id);
    expect(own.filter((p) => p.continued)).toHaveLength(0);
    expect(own.filter((p) => p.line === LONG)).toHaveLength(1);
    expect(Buffer.byteLength(LONG)).toBeLessThan(MAX_LINE_BYTES);
  }
}

describe("logs: 'prefix'", () => {
  it('prints every worker line whole as [slot N · worker M] …, stdout to stdout and stderr to stderr', async () => {
    const { workers, stdout, stderr } = await run('prefix');
    expectWholeLines({ stdout: parsePrefix(stdout), stderr: parsePrefix(stderr) }, workers);
    expect(stdout).toContain(`[slot 0 · worker ${workers[0]!.id}] hello world\n`);
  });
});

describe("logs: 'json'", () => {
  it('prints every worker line as one JSON object { time, slot, workerId, pid, stream, line }', async () => {
    const { workers, stdout, stderr } = await run('json');
    const printed = { stdout: parseJson(stdout), stderr: parseJson(stderr) };
    expectWholeLines(printed, workers);
    for (const stream of ['stdout', 'stderr'] as const) {
      for (const p of printed[stream]) {
        expect(p.stream).toBe(stream);
        expect(p.pid).toBe(workers.find((w) => w.id === p.workerId)!.pid);
        expect(new Date(p.time!).toISOString()).toBe(p.time);
      }
    }
    const first = JSON.parse(stdout.split('\n')[0]!) as Record<string, unknown>;
    expect(Object.keys(first).sort()).toEqual([
      'line',
      'pid',
      'slot',
      'stream',
      'time',
      'workerId',
    ]);
  });
});

describe("logs: 'inherit' (the default)", () => {
  it('leaves worker output as it is: no label, stdout on stdout, stderr on stderr', async () => {
    const { stdout, stderr } = await run('inherit');
    expect(stdout).toContain('hello world\nsecond\r\n');
    expect(stderr).toContain('hello world\nsecond\r\n');
    expect(stdout).toContain('partial last line (stdout)');
    expect(stderr).toContain('partial last line (stderr)');
    expect(stdout).not.toContain('[slot');
  });
});

describe('the stderr tail of a failed start', () => {
  for (const logs of ['prefix', 'json'] as const) {
    it(`still explains STARTUP_FAILED with logs: '${logs}', the worker's stderr printed as lines`, async () => {
      const written = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      let error: BusError;
      let printed: string;
      try {
        error = await rejection(
          start(contract, fixture('throws-at-import.ts'), { workers: 1, logs }),
        );
      } finally {
        printed = written.mock.calls.map(([chunk]) => String(chunk)).join('');
        written.mockRestore();
      }
      expect(error.code, error.message).toBe('STARTUP_FAILED');
      expect((error.data as { stderr: string }).stderr).toContain(
        'fixture: this worker throws at import',
      );
      // Only the lines of the worker (vitest may print its own).
      const mine = printed
        .split('\n')
        .filter((l) => (logs === 'json' ? l.startsWith('{"time"') : l.startsWith('[slot ')))
        .join('\n');
      const lines = logs === 'json' ? parseJson(mine) : parsePrefix(mine);
      expect(forkedPids().filter(isAlive)).toEqual([]);
      expect(lines.some((l) => l.line.includes('fixture: this worker throws at import'))).toBe(
        true,
      );
      if (logs === 'json') for (const l of lines) expect(l.stream).toBe('stderr');
    });
  }
});
