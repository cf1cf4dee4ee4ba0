/**
 * The cluster transport: Node `cluster` IPC links (the primary's link to one worker, a worker's
 * link to the primary) and the memberships that hand them out (the workers the primary forks;
 * the primary, for a worker). Ordering is what Node's IPC channel guarantees: messages arrive in
 * send order.
 *
 * @module
 */
import type { Worker } from 'node:cluster';
import { HUB_ID } from '../core/extension.js';
import type { Link } from './link.js';
import { ManualMembership, type Membership } from './membership.js';

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

/** The primary's membership: the workers it forks, each handed over with its link. */
export interface ClusterMembership extends Membership {
  /**
   * Worker `worker`, just forked, joins with its {@link workerLink}, at once (before anything it
   * sends can arrive); it is gone when that link closes.
   */
  add(worker: Worker): void;
}

/** The primary's membership, fed by whoever forks (the supervisor's slots). */
export function clusterPrimaryMembership(): ClusterMembership {
  const members = new ManualMembership(HUB_ID);
  return {
    self: HUB_ID,
    add: (worker) => members.join(worker.id, workerLink(worker)),
    onJoined: (listener) => members.onJoined(listener),
    onGone: (listener) => members.onGone(listener),
    close: () => members.close(),
  };
}

/**
 * A worker's membership: this worker (`workerId`, its `cluster.worker.id`) and the primary, which
 * is there from the start: each `onJoined` listener gets it at once, with the {@link primaryLink}.
 * The primary is gone when that link closes (the channel's `disconnect`).
 *
 * @throws Error outside a cluster worker (no IPC channel).
 */
export function clusterWorkerMembership(workerId: number): Membership {
  const link = primaryLink();
  let closed = false;
  return {
    self: workerId,
    onJoined: (listener) => {
      if (!closed) listener(HUB_ID, link);
      return () => {};
    },
    onGone: (listener) =>
      link.onClose(() => {
        if (!closed) listener(HUB_ID);
      }),
    close: () => {
      closed = true;
    },
  };
}
