/**
 * Waiting for a cluster's first workers: every slot's worker ready, or the reason it will not be.
 * A slot whose worker exits before it is ready twice in a row with the same cause (a syntax
 * error, a missing module, a port in use) fails the start at once, with the exit code or signal
 * and the end of what the worker wrote to stderr; a timeout says, per slot, how far its worker got.
 *
 * @module
 */
import type { EventEmitter } from 'eventemitter3';
import { BusError } from '../errors.js';
import type { ClusterEvents, WorkerReadyEvent } from './events.js';
import type { EarlyExit, Slot, Slots } from './slots.js';
import {
  errorLine,
  lastLines,
  readableLines,
  STDERR_TAIL_BYTES,
  STDERR_TAIL_LINES,
} from './stderr-tail.js';

/** Lines of stderr quoted in the message (one line: a BusError's message has no line breaks). */
const MESSAGE_LINES = 10;

/**
 * @internal Resolves once every slot's worker is ready. Rejects with `STARTUP_FAILED` when a
 * slot's worker exits before it is ready twice in a row with the same cause, or once when the
 * slot will not be restarted (`restart: false`, restart limit); with `TIMEOUT` after `timeoutMs`.
 */
export function waitAllReady(
  events: EventEmitter<ClusterEvents, unknown>,
  slots: Slots,
  timeoutMs: number,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const all = slots.slots;
    /** Per slot: the cause of its last exit before ready, since its last ready worker. */
    const lastCause = new Map<number, string>();
    /** Per slot: bumped at each ready, so an exit judged after it is not "in a row". */
    const generation = new Map<number, number>();
    let finished = false;
    const notReady = () => all.filter((s) => s.current?.state !== 'ready');
    const onReady = (event: WorkerReadyEvent) => {
      lastCause.delete(event.slot);
      generation.set(event.slot, (generation.get(event.slot) ?? 0) + 1);
      if (notReady().length === 0) done();
    };
    /** Per slot: its exits are judged in the order they happened, whenever their pipes close. */
    const judged = new Map<number, Promise<void>>();
    const onEarlyExit = (exit: EarlyExit) => {
      const at = generation.get(exit.slot) ?? 0;
      const judge = (stderr: string) => {
        if (finished || (generation.get(exit.slot) ?? 0) !== at) return;
        const cause = causeOf(exit, stderr);
        const repeated = lastCause.get(exit.slot) === cause;
        lastCause.set(exit.slot, cause);
        if (repeated) done(startupFailed(exit, stderr, 'repeated'));
        else if (exit.stop !== undefined) done(startupFailed(exit, stderr, exit.stop));
      };
      const previous = judged.get(exit.slot) ?? Promise.resolve();
      judged.set(exit.slot, previous.then(() => exit.stderr).then(judge));
    };
    const timer = setTimeout(
      () =>
        done(
          new BusError(
            'TIMEOUT',
            `startCluster: ${notReady().length} of ${all.length} workers were not ready within ${timeoutMs} ms: ${notReady().map(whyNotReady).join('; ')}`,
          ),
        ),
      timeoutMs,
    );
    timer.unref();
    const done = (error?: BusError) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      events.off('worker:ready', onReady);
      slots.earlyExits.delete(onEarlyExit);
      if (error === undefined) resolve();
      else reject(error);
    };
    events.on('worker:ready', onReady);
    slots.earlyExits.add(onEarlyExit);
    if (notReady().length === 0) done();
  });
}

/**
 * What makes two exits "the same cause": the exit code or signal, and the last line the worker
 * wrote to stderr that names an error (else its last line; stack frames, blank lines and Node's
 * `Node.js v…` line aside), numbers aside (a timestamp or a pid in it is not another cause).
 */
function causeOf(exit: EarlyExit, stderr: string): string {
  const line = errorLine(stderr) ?? readableLines(stderr).at(-1) ?? '';
  return `${exit.code}|${exit.signal}|${line.trim().replace(/\d+/g, '#')}`;
}

/** `exit code 1`, `killed by SIGKILL`. */
function describeExit(code: number | null, signal: string | null): string {
  return signal !== null ? `killed by ${signal}` : `exit code ${code}`;
}

function startupFailed(
  exit: EarlyExit,
  kept: string,
  why: 'repeated' | 'restart-off' | 'restart-limit',
): BusError {
  const error = errorLine(kept);
  const refused =
    exit.hello === 'refused'
      ? ', after its connect() was refused (CONTRACT_MISMATCH, reported on the error event)'
      : '';
  const how = `${describeExit(exit.code, exit.signal)}${error === undefined ? '' : `: ${error}`}${refused}`;
  const what =
    why === 'repeated'
      ? `the worker in slot ${exit.slot} exited before it was ready, twice in a row with the same cause (${how})`
      : why === 'restart-off'
        ? `the worker in slot ${exit.slot} exited before it was ready (${how}), and restart is off`
        : `the workers in slot ${exit.slot} kept exiting before they were ready (restart limit reached: ${exit.restarts} restarts within ${exit.windowMs} ms; the last one: ${how})`;
  const quoted = readableLines(kept).slice(-MESSAGE_LINES);
  const tail =
    quoted.length === 0
      ? 'it wrote nothing to stderr'
      : `its last lines on stderr (stack frames left out; the last ${STDERR_TAIL_LINES} lines in data.stderr): ${quoted.map((l) => l.trim()).join(' | ')}`;
  return new BusError('STARTUP_FAILED', `startCluster: ${what}; ${tail}`, {
    data: {
      slot: exit.slot,
      workerId: exit.workerId,
      exitCode: exit.code,
      signal: exit.signal,
      stderr: lastLines(kept, STDERR_TAIL_LINES, STDERR_TAIL_BYTES),
    },
  });
}

/** Why slot `slot` has no ready worker at the startup's deadline. */
function whyNotReady(slot: Slot): string {
  const record = slot.current;
  if (record === undefined) {
    return `slot ${slot.index} has no worker (its last one exited before it was ready; a restart is pending)`;
  }
  const who = `worker ${record.id} (slot ${slot.index})`;
  switch (record.hello) {
    case 'welcomed':
      return `${who} connected with manualReady and never called bus.ready()`;
    case 'refused':
      return `${who} called connect() and was refused (CONTRACT_MISMATCH, reported on the error event)`;
    default:
      return `${who} is running but did not connect (does the worker call connect()?)`;
  }
}
