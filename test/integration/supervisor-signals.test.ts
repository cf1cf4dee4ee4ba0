/**
 * Signals, sent to a separately spawned primary (never to the vitest process): SIGHUP reloads
 * the config file, SIGUSR2 restarts every worker, SIGTERM closes gracefully; afterwards no
 * process is left and no call is unsettled. Sent to the whole process group, as nodemon and a
 * Ctrl-C do, they are the primary's alone: the workers ignore them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, expect, it } from 'vitest';
import { fixture, isAlive, until } from './fixtures/supervisor-helpers.js';

type Line = Record<string, unknown> & { event: string };

let child: ChildProcess | undefined;
/** The primary leads its own process group (spawned detached): kill the group. */
let group = false;
let dir: string | undefined;
afterEach(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    if (group) process.kill(-child.pid!, 'SIGKILL');
    else child.kill('SIGKILL');
  }
  child = undefined;
  group = false;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/**
 * Spawns the primary fixture and collects its JSON lines. `detached`: it leads a process group
 * of its own (its workers join it), for signals sent to the whole group. `signals`: its option.
 */
function spawnPrimary(
  configFile: string,
  options: { readonly detached?: boolean; readonly signals?: unknown } = {},
) {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', fixture('supervisor-primary.ts'), configFile],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
      detached: options.detached === true,
      env:
        options.signals === undefined
          ? process.env
          : { ...process.env, SIGNALS: JSON.stringify(options.signals) },
    },
  );
  group = options.detached === true;
  const lines: Line[] = [];
  createInterface({ input: proc.stdout! }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as Line);
    } catch {
      // not one of ours
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const next = (event: string, match: (l: Line) => boolean = () => true, ms = 20_000) =>
    until(
      () => lines.find((l) => l.event === event && match(l)),
      (l) => l !== undefined,
      `the primary prints '${event}'`,
      ms,
    ) as Promise<Line>;
  return { proc, lines, exited, next };
}

it('SIGHUP reloads the config file, SIGUSR2 restarts, SIGTERM closes with nothing left', async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clusterbus-signals-'));
  const file = path.join(dir, 'config.json');
  await writeFile(file, JSON.stringify({ message: 'v1' }));
  const primary = spawnPrimary(file);
  child = primary.proc;
  const started = await primary.next('started');
  const first = (started.workers as Array<{ pid: number }>).map((w) => w.pid);

  // SIGHUP: reload, as nginx does. Valid: a new version everywhere; invalid: nothing changes.
  await writeFile(file, JSON.stringify({ message: 'v2' }));
  child.kill('SIGHUP');
  expect(await primary.next('config:update')).toMatchObject({ version: 2, accepted: true });
  await writeFile(file, JSON.stringify({ message: 42 }));
  child.kill('SIGHUP');
  expect(await primary.next('config:error')).toMatchObject({
    code: 'VALIDATION',
    source: 'reload',
  });

  // SIGUSR2: rolling restart of every worker.
  child.kill('SIGUSR2');
  const restart = await primary.next('restart:done');
  expect((restart.replaced as unknown[]).length).toBe(2);
  for (const pid of first) expect(isAlive(pid)).toBe(false);
  child.stdin!.write('workers\n');
  const now = (await primary.next('workers')).workers as Array<{ pid: number; slot: number }>;
  expect(now.map((w) => w.slot)).toEqual([0, 1]);

  // SIGTERM with a call in flight: it finishes, the workers drain and exit, then the primary.
  child.stdin!.write('call\n');
  await primary.next('call-start');
  child.kill('SIGTERM');
  expect(await primary.next('signal', (l) => l.signal === 'SIGTERM')).toMatchObject({
    action: 'close',
  });
  expect(await primary.next('call-settled')).toMatchObject({ status: 'fulfilled' });
  expect(await primary.next('close')).toMatchObject({ pending: 0 });
  const exit = await primary.exited;
  // Once the cluster is closed, the primary exits with 128 + 15, its 'exit' hook running.
  expect(exit).toEqual({ code: 143, signal: null });
  // Its stdout may still be read after the 'exit' event: wait for the line.
  expect(await primary.next('primary-exit', () => true, 5_000)).toMatchObject({ code: 143 });
  const closeIndex = primary.lines.findIndex((l) => l.event === 'close');
  const workerExits = primary.lines.filter((l) => l.event === 'worker:exit' && l.planned === true);
  expect(workerExits.length).toBe(4);
  for (const e of workerExits) expect(primary.lines.indexOf(e)).toBeLessThan(closeIndex);
  for (const pid of [...first, ...now.map((w) => w.pid), started.pid as number]) {
    expect(isAlive(pid)).toBe(false);
  }
});

/**
 * Sends `signal` to the primary's whole process group, as nodemon and a terminal do, and checks
 * that it made exactly one rolling restart of both workers and no unplanned exit; then ends the
 * group with SIGTERM (as `nodemon --signal SIGTERM` does), a graceful close.
 */
async function groupSignalRestarts(signal: NodeJS.Signals, signals?: unknown): Promise<void> {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clusterbus-signals-'));
  const file = path.join(dir, 'config.json');
  await writeFile(file, JSON.stringify({ message: 'v1' }));
  const primary = spawnPrimary(file, { detached: true, signals });
  child = primary.proc;
  const started = await primary.next('started');
  const first = (started.workers as Array<{ pid: number }>).map((w) => w.pid);

  process.kill(-child.pid!, signal);
  const restart = await primary.next('restart:done');
  expect((restart.replaced as unknown[]).length).toBe(2);
  for (const pid of first) expect(isAlive(pid)).toBe(false);
  child.stdin!.write('workers\n');
  const now = (await primary.next('workers')).workers as Array<{ pid: number; state: string }>;
  expect(now.map((w) => w.state)).toEqual(['ready', 'ready']);

  process.kill(-child.pid!, 'SIGTERM');
  expect(await primary.exited).toEqual({ code: 143, signal: null });
  const of = (event: string) => primary.lines.filter((l) => l.event === event);
  expect(of('signal').map((l) => [l.signal, l.action])).toEqual([
    [signal, 'restart'],
    ['SIGTERM', 'close'],
  ]);
  expect(of('restart:done')).toHaveLength(1);
  expect(of('config:update')).toEqual([]);
  // Every worker exit was the primary's doing: 2 replaced, 2 drained at the close.
  const exits = of('worker:exit');
  expect(exits.map((e) => e.planned)).toEqual([true, true, true, true]);
  for (const pid of [...first, ...now.map((w) => w.pid), started.pid as number]) {
    expect(isAlive(pid)).toBe(false);
  }
}

it('SIGUSR2 sent to the whole process group (nodemon) makes one rolling restart: the workers ignore it, no unplanned exit', async () => {
  await groupSignalRestarts('SIGUSR2');
});

it('takes its signal map as an option: restart on SIGHUP (reload off), sent to the whole group, ignored by the workers', async () => {
  await groupSignalRestarts('SIGHUP', { restart: 'SIGHUP', reload: false });
});
