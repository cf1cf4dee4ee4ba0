/**
 * Telling the process manager that the cluster is up, once every worker is ready: PM2's
 * `wait_ready` (the primary sends `'ready'` on its IPC channel, when it has one) and systemd's
 * `Type=notify` (`systemd-notify --ready` when `NOTIFY_SOCKET` is set). A failure to notify is a
 * warning, never a crash.
 *
 * @module
 */
import { execFile } from 'node:child_process';

/** How long `systemd-notify` may take before it is given up on (killed, warned), in ms. */
const NOTIFY_TIMEOUT_MS = 5_000;

/** What {@link notifyReady} uses of the process; the real one by default. */
export interface ReadyTarget {
  /** The IPC channel to the parent, if any (`process.send`). */
  readonly send?: ((message: unknown) => boolean) | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * @internal Tells PM2 and systemd that the cluster is ready. Resolves once both are done (it
 * never rejects: a failure is a `BusWarning`).
 */
export function notifyReady(
  target: ReadyTarget = { send: process.send?.bind(process), env: process.env },
): Promise<void> {
  if (typeof target.send === 'function') {
    try {
      target.send('ready');
    } catch (error) {
      notifyWarning(`could not send 'ready' to the parent process: ${String(error)}`);
    }
  }
  if (target.env.NOTIFY_SOCKET === undefined || target.env.NOTIFY_SOCKET === '') {
    return Promise.resolve();
  }
  return new Promise<void>((resolve) => {
    execFile(
      'systemd-notify',
      ['--ready'],
      { env: { ...target.env }, timeout: NOTIFY_TIMEOUT_MS },
      (error, _stdout, stderr) => {
        if (error !== null) {
          const why = String(stderr).trim() || error.message;
          notifyWarning(`NOTIFY_SOCKET is set, but systemd-notify --ready failed: ${why}`);
        }
        resolve();
      },
    );
  });
}

/** A failed notification: a process warning (`BusWarning`), as every report nobody awaits. */
function notifyWarning(message: string): void {
  process.emitWarning(message, { type: 'BusWarning' });
}
