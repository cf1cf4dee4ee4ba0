/**
 * Node `cluster` IPC links: the primary's link to one worker, and a worker's link to the
 * primary. Ordering is what Node's IPC channel guarantees: messages arrive in send order.
 *
 * @module
 */
import type { Worker } from 'node:cluster';
import type { Link } from './link.js';

/** The primary's link to one worker. Closes on the worker's `disconnect` or `exit`, whichever is first. */
export function workerLink(worker: Worker): Link {
  let open = worker.isConnected();
  const closeListeners = new Set<() => void>();
  const onGone = () => {
    if (!open) return;
    open = false;
    worker.off('disconnect', onGone);
    worker.off('exit', onGone);
    const ls = [...closeListeners];
    closeListeners.clear();
    for (const l of ls) l();
  };
  worker.on('disconnect', onGone);
  worker.on('exit', onGone);
  return {
    get connected() {
      return open && worker.isConnected();
    },
    send(message, written) {
      if (!open || !worker.isConnected()) return false;
      // The callback also receives a send error (the channel closed): the close path reports it.
      worker.send(message as never, written);
      return true;
    },
    onMessage(listener) {
      const l = (m: unknown) => listener(m);
      worker.on('message', l);
      return () => worker.off('message', l);
    },
    onClose(listener) {
      if (!open) {
        queueMicrotask(listener);
        return () => {};
      }
      closeListeners.add(listener);
      return () => closeListeners.delete(listener);
    },
  };
}

/** A worker's link to the primary, over `process.send`. Closes on the channel's `disconnect`. */
export function primaryLink(): Link {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('primaryLink: this process has no IPC channel');
  return {
    get connected() {
      return process.connected;
    },
    send(message, written) {
      if (!process.connected) return false;
      // The callback also receives a send error (the channel closed): the close path reports it.
      send(message, undefined, undefined, written);
      return true;
    },
    onMessage(listener) {
      const l = (m: unknown) => listener(m);
      process.on('message', l);
      return () => process.off('message', l);
    },
    onClose(listener) {
      if (!process.connected) {
        queueMicrotask(listener);
        return () => {};
      }
      process.once('disconnect', listener);
      return () => process.off('disconnect', listener);
    },
  };
}
