/**
 * The primary's signal handling (`startCluster({ signals: true })`, the default): SIGTERM and
 * SIGINT close the cluster gracefully and then end the process with the same signal; SIGUSR2
 * runs a rolling restart; SIGHUP reloads the config file (as nginx does), listened to only when
 * there is one.
 *
 * @module
 */
import type { BusError } from '../errors.js';

/** What the signal handlers drive. */
export interface SignalTarget {
  close(): Promise<void>;
  restart(): Promise<unknown>;
  reload(): Promise<unknown>;
  /** Whether a config file is configured (SIGHUP is listened to only then). */
  readonly hasConfigFile: boolean;
  signal(signal: NodeJS.Signals, action: 'close' | 'reload' | 'restart'): void;
  failed(error: unknown, action: 'reload' | 'restart'): void;
}

/**
 * Installs the listeners; returns the function that removes them (idempotent). After a
 * signal-driven close, the signal is raised again once our listener is gone, so the process ends
 * as it would have without us, unless the app listens to that signal itself (then the app
 * decides what follows the close).
 */
export function installSignals(target: SignalTarget): () => void {
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
      void target.close().then(() => {
        if (!appListens && process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    };
    return listener;
  };
  listeners.set('SIGTERM', stop('SIGTERM'));
  listeners.set('SIGINT', stop('SIGINT'));
  listeners.set('SIGUSR2', () => {
    target.signal('SIGUSR2', 'restart');
    target.restart().catch((error: unknown) => target.failed(error, 'restart'));
  });
  if (target.hasConfigFile) {
    listeners.set('SIGHUP', () => {
      target.signal('SIGHUP', 'reload');
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
