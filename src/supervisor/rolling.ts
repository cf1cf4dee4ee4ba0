/**
 * Cluster-wide operations over the slots: the rolling restart (one slot at a time, the new
 * worker ready before the old one is drained) and scaling (add slots, or drain and remove the
 * last ones).
 *
 * @module
 */
import { BusError } from '../errors.js';
import type { RestartResult, ScaleResult, SlotRestart } from './events.js';
import type { Slots } from './slots.js';

/** Timeouts of one operation, in ms. */
export interface OperationTimeouts {
  readonly readyTimeoutMs: number;
  readonly drainTimeoutMs: number;
}

/**
 * Replaces the worker of every slot, in slot order, one at a time. A slot stopped by the restart
 * limit is started again (its restart history forgotten). Stops at the first slot whose new
 * worker does not become ready, and rejects with that error.
 */
export async function rollingRestart(
  slots: Slots,
  timeouts: OperationTimeouts,
): Promise<RestartResult> {
  const started = performance.now();
  const replaced: SlotRestart[] = [];
  for (const slot of [...slots.slots]) {
    if (slots.closing) throw new BusError('CLOSED', 'restart: the cluster is closing');
    if (slot.retired) continue;
    if (slot.stopped) {
      slot.stopped = false;
      slot.restarts.reset();
    }
    const outcome = await slots.replace(slot, 'restart', timeouts);
    if (outcome !== undefined) replaced.push(outcome);
  }
  return { replaced, durationMs: Math.round(performance.now() - started) };
}

/**
 * Grows the cluster to `count` slots (forks the new ones and waits until they are ready) or
 * shrinks it (drains the workers of the last slots, then removes them).
 */
export async function scaleTo(
  slots: Slots,
  count: number,
  timeouts: OperationTimeouts,
): Promise<ScaleResult> {
  const from = slots.slots.length;
  if (count > from) {
    const added = [];
    for (let i = from; i < count; i++) added.push(slots.addSlot());
    await Promise.all(
      added.map((slot) => {
        const record = slot.current;
        return record === undefined
          ? Promise.resolve()
          : slots.waitReady(record, timeouts.readyTimeoutMs);
      }),
    );
  } else if (count < from) {
    const removed = slots.slots.slice(count).reverse();
    for (const slot of removed) {
      slot.retired = true;
      clearTimeout(slot.timer);
      slot.timer = undefined;
    }
    await Promise.all(
      removed.map(async (slot) => {
        // A replacement in progress finishes first; then whatever serves the slot is drained.
        await slot.busy;
        const workers = [slot.current, slot.next].filter((r) => r !== undefined);
        await Promise.all(workers.map((r) => slots.drain(r, 'scale', timeouts.drainTimeoutMs)));
      }),
    );
    slots.slots.length = count;
  }
  return { from, to: count };
}
