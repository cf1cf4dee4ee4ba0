/**
 * The primary's signal handling (`startCluster({ signals })`): by default SIGTERM and SIGINT
 * close the cluster gracefully and then end the process with exit status 128 + the signal's
 * number (143, 130), through `process.exit()`, so that `process.on('exit')` hooks run; SIGUSR2 runs a
 * rolling restart; SIGHUP reloads the config file (as nginx does), listened to only when there is
 * one. The map is an option; the workers clusterbus forks ignore every signal in it (the primary
 * owns them, see {@link deferSignalsToPrimary}).
 *
 * @module
 */
import os from 'node:os';
import { BusError, toBusError } from '../errors.js';
import { describeValue } from '../util/describe.js';
import { warn } from '../util/warn.js';

/**
 * Which signals the primary handles, and what each does (`startCluster({ signals })`). A field
 * left out keeps its default; `false` turns that action off. One signal serves one action.
 * @category Supervision
 */
export interface SignalOptions {
  /**
   * Close the cluster gracefully (`app.close({ timeoutMs: drainTimeoutMs })`), then end the
   * process with exit status 128 + the signal's number (SIGTERM: 143, SIGINT: 130), by
   * `process.exit()`: the process's `'exit'` hooks run.
   * @default ['SIGTERM', 'SIGINT']
   */
  readonly shutdown?: NodeJS.Signals | readonly NodeJS.Signals[] | false;
  /**
   * Run a rolling restart (`app.restart()`).
   * @default 'SIGUSR2'
   */
  readonly restart?: NodeJS.Signals | false;
  /**
   * Reload `configFile` (`app.config.reload()`); listened to only when there is a `configFile`.
   * @default 'SIGHUP'
   */
  readonly reload?: NodeJS.Signals | false;
}

/** @internal The signal map, checked, with defaults; `reload` only when there is a config file. */
export interface ResolvedSignals {
  readonly shutdown: readonly NodeJS.Signals[];
  readonly restart: NodeJS.Signals | undefined;
  readonly reload: NodeJS.Signals | undefined;
}

const DEFAULT_SIGNALS = {
  shutdown: ['SIGTERM', 'SIGINT'],
  restart: 'SIGUSR2',
  reload: 'SIGHUP',
} as const;

/** Signals no listener can catch. */
const UNCATCHABLE: ReadonlySet<string> = new Set(['SIGKILL', 'SIGSTOP']);

/**
 * @internal Checks the `signals` option: `true` (the default map), `false` (none), or a
 * {@link SignalOptions}. Throws `INVALID_ARGUMENT` for an unknown key, a name that is not a
 * catchable signal of this platform, or a signal given to two actions.
 */
export function resolveSignals(
  value: unknown,
  hasConfigFile: boolean,
): ResolvedSignals | undefined {
  if (value === false) return undefined;
  const map: Record<string, unknown> =
    value === undefined || value === true ? {} : (checkMap(value) as Record<string, unknown>);
  const shutdownValue = map.shutdown ?? DEFAULT_SIGNALS.shutdown;
  const shutdown =
    shutdownValue === false
      ? []
      : (Array.isArray(shutdownValue) ? shutdownValue : [shutdownValue]).map((s: unknown) =>
          checkSignal(s, 'shutdown'),
        );
  const restart = optionalSignal(map.restart ?? DEFAULT_SIGNALS.restart, 'restart');
  const reload = optionalSignal(map.reload ?? DEFAULT_SIGNALS.reload, 'reload');
  const resolved = {
    shutdown: [...new Set(shutdown)],
    restart,
    reload: hasConfigFile ? reload : undefined,
  };
  const used = [...resolved.shutdown, restart, reload].filter((s) => s !== undefined);
  const twice = used.find((s, i) => used.indexOf(s) !== i);
  if (twice !== undefined) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: signals: ${twice} is given to two actions (one signal, one action)`,
    );
  }
  return resolved;
}

/** @internal Every signal the primary listens to under `signals`. */
export function handledSignals(signals: ResolvedSignals | undefined): NodeJS.Signals[] {
  if (signals === undefined) return [];
  return [...signals.shutdown, signals.restart, signals.reload].filter(
    (s): s is NodeJS.Signals => s !== undefined,
  );
}

function checkMap(value: unknown): object {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: signals must be true, false or { shutdown, restart, reload }, got ${describeValue(value)}`,
    );
  }
  const unknown = Object.keys(value).filter((k) => !Object.hasOwn(DEFAULT_SIGNALS, k));
  if (unknown.length > 0) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: signals: unknown key ${JSON.stringify(unknown[0])} (known: shutdown, restart, reload)`,
    );
  }
  return value;
}

function optionalSignal(value: unknown, action: string): NodeJS.Signals | undefined {
  return value === false ? undefined : checkSignal(value, action);
}

function checkSignal(value: unknown, action: string): NodeJS.Signals {
  if (
    typeof value !== 'string' ||
    !Object.hasOwn(os.constants.signals, value) ||
    UNCATCHABLE.has(value)
  ) {
    throw new BusError(
      'INVALID_ARGUMENT',
      `startCluster: signals.${action} must be a signal name this process can catch (e.g. 'SIGUSR2') or false, got ${describeValue(value)}`,
    );
  }
  return value as NodeJS.Signals;
}

/** What the signal handlers drive. */
export interface SignalTarget {
  close(): Promise<void>;
  restart(): Promise<unknown>;
  reload(): Promise<unknown>;
  signal(signal: NodeJS.Signals, action: 'close' | 'reload' | 'restart'): void;
  failed(error: unknown, action: 'reload' | 'restart'): void;
}

/**
 * Installs the listeners of `signals`; returns the function that removes them (idempotent).
 * After a signal-driven close, the process exits with 128 + the signal's number, the status the
 * signal itself would have given, its `'exit'` hooks run (a re-raised signal would skip them),
 * unless the app listens to that signal itself (then the app decides what follows the close).
 */
export function installSignals(signals: ResolvedSignals, target: SignalTarget): () => void {
  const listeners = new Map<NodeJS.Signals, () => void>();
  const remove = () => {
    for (const [signal, listener] of listeners) process.off(signal, listener);
    listeners.clear();
  };
  const stop = (signal: NodeJS.Signals) => {
    const listener = () => {
      // The app's own listeners of this signal (a `once` one included) decide what follows.
      const appListens = process.listeners(signal).some((l) => l !== listener);
      target.signal(signal, 'close');
      remove(); // a second signal meanwhile has the default effect: the impatient way out
      // Exit as the shell reports a death by this signal (128 + its number: 143 for SIGTERM, 130
      // for SIGINT), with process.exit() rather than by raising it again: 'exit' hooks run.
      const reraise = () => {
        if (!appListens && process.listenerCount(signal) === 0) {
          process.exit(128 + (os.constants.signals[signal] ?? 0));
        }
      };
      target.close().then(reraise, (error: unknown) => {
        // Nobody awaits this close: say loudly what failed (a last snapshot not written), then
        // end as the signal would.
        const e = toBusError(error, 'INVALID_ARGUMENT');
        warn(e, `closing on ${signal} failed: ${e.message}`);
        reraise();
      });
    };
    return listener;
  };
  for (const signal of signals.shutdown) listeners.set(signal, stop(signal));
  const { restart, reload } = signals;
  if (restart !== undefined) {
    listeners.set(restart, () => {
      target.signal(restart, 'restart');
      target.restart().catch((error: unknown) => target.failed(error, 'restart'));
    });
  }
  if (reload !== undefined) {
    listeners.set(reload, () => {
      target.signal(reload, 'reload');
      target.reload().catch((error: unknown) => target.failed(error as BusError, 'reload'));
    });
  }
  for (const [signal, listener] of listeners) {
    try {
      process.on(signal, listener);
    } catch {
      // A platform without this signal (SIGUSR2 and SIGHUP on Windows): skip it.
      listeners.delete(signal);
    }
  }
  return remove;
}

/** Signals a worker leaves to its primary in any case (a Ctrl-C reaches the whole group). */
const DEFERRED_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * @internal Makes this worker ignore SIGINT, SIGTERM and `primarySignals` (every signal its
 * clusterbus primary handles: by default also SIGUSR2, and SIGHUP with a config file) while its
 * bus is open. A signal sent to the whole process group (Ctrl-C, a group-wide SIGTERM, nodemon's
 * SIGUSR2) reaches the primary too, which drains or replaces the workers; a worker dying at once
 * would drop its in-flight requests and count as a crash. A worker whose primary dies still
 * exits (Node ends a worker whose IPC channel closes unexpectedly). Returns the remover.
 */
export function deferSignalsToPrimary(primarySignals: readonly NodeJS.Signals[] = []): () => void {
  const ignore = () => {};
  const signals = [...new Set<NodeJS.Signals>([...DEFERRED_SIGNALS, ...primarySignals])];
  const installed: NodeJS.Signals[] = [];
  for (const s of signals) {
    try {
      process.on(s, ignore);
      installed.push(s);
    } catch {
      // A signal this platform does not have: nothing to ignore.
    }
  }
  return () => {
    for (const s of installed) process.off(s, ignore);
  };
}
