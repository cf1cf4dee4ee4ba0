/**
 * The hub side: the watch table, which process watches which keys of which store, and the fan-out
 * of each change to them: one `$state.change` message per watching process (a worker: in order
 * with its answers on the same channel; the hub itself: through its local loop, as a copy).
 *
 * Watches are indexed per store by exact key (a map) and by prefix (a radix tree; a watch of
 * every key is the empty prefix), so a write costs the length of its key plus the watches it
 * matches, whatever other watches exist. Each process has at most `maxWatchesPerProcess`.
 *
 * @module
 */
import { HUB_ID, type PeerId } from '../core/extension.js';
import type { Origin } from '../core/types.js';
import { BusError } from '../errors.js';
import { PrefixIndex } from '../util/prefix-index.js';
import { type ChangeMessage, Verb } from './protocol.js';

/** Default `maxWatchesPerProcess`: watches one process may have registered at once. */
export const DEFAULT_MAX_WATCHES_PER_PROCESS = 10_000;

/** One watch: process `origin`'s watch `id`, of one key, a prefix, or every key. */
export interface WatchReg {
  readonly origin: Origin;
  readonly id: number;
  readonly store: string;
  readonly key: string | undefined;
  readonly prefix: string | undefined;
}

/** Whether watch `reg` sees changes of `key`. */
export function matches(reg: WatchReg, key: string): boolean {
  if (reg.key !== undefined) return key === reg.key;
  if (reg.prefix !== undefined) return key.startsWith(reg.prefix);
  return true;
}

/** Sends one-way message `verb` to peer `to` (`ExtensionContext.send`); false when it is gone. */
export type SendChange = (to: PeerId, verb: string, payload: ChangeMessage) => boolean;

/** The watches of one store: by exact key, and by prefix (every key: the empty prefix). */
interface StoreWatches {
  readonly byKey: Map<string, Set<WatchReg>>;
  readonly byPrefix: PrefixIndex<WatchReg>;
}

/** Every watch of the cluster, by store and by process. */
export class WatchTable {
  private readonly byStore = new Map<string, StoreWatches>();
  private readonly byOrigin = new Map<Origin, Map<number, WatchReg>>();

  /**
   * @param sendChange - how a change reaches a process (the extension context's `send`).
   * @param maxPerProcess - the most watches one process may have at once.
   */
  constructor(
    private readonly sendChange: SendChange,
    private readonly maxPerProcess = DEFAULT_MAX_WATCHES_PER_PROCESS,
  ) {}

  /** How many watches, and which processes have at least one. */
  stats(): { watches: number; watchers: Origin[] } {
    let watches = 0;
    for (const regs of this.byOrigin.values()) watches += regs.size;
    return { watches, watchers: [...this.byOrigin.keys()] };
  }

  /**
   * Registers a watch.
   * @throws {@link BusError} `INVALID_ARGUMENT` when that process already has a watch `id`;
   *   `LIMIT_EXCEEDED` (`data: { limit: 'maxWatchesPerProcess', value }`) when it already has
   *   `maxWatchesPerProcess` watches. Nothing changes.
   */
  add(reg: WatchReg): void {
    const regs = this.byOrigin.get(reg.origin);
    if (regs?.has(reg.id) === true) {
      throw new BusError('INVALID_ARGUMENT', `watch ${reg.id} is already registered`);
    }
    if ((regs?.size ?? 0) >= this.maxPerProcess) {
      const who = reg.origin === 'primary' ? 'the primary' : `worker ${reg.origin}`;
      throw new BusError(
        'LIMIT_EXCEEDED',
        `watch of store '${reg.store}': ${who} already has ${this.maxPerProcess} watches (maxWatchesPerProcess); stop watches it no longer needs, or raise store.maxWatchesPerProcess`,
        { data: { limit: 'maxWatchesPerProcess', value: this.maxPerProcess } },
      );
    }
    if (regs === undefined) this.byOrigin.set(reg.origin, new Map([[reg.id, reg]]));
    else regs.set(reg.id, reg);
    let index = this.byStore.get(reg.store);
    if (index === undefined) {
      index = { byKey: new Map(), byPrefix: new PrefixIndex() };
      this.byStore.set(reg.store, index);
    }
    if (reg.key === undefined) {
      index.byPrefix.add(reg.prefix ?? '', reg);
      return;
    }
    const set = index.byKey.get(reg.key);
    if (set === undefined) index.byKey.set(reg.key, new Set([reg]));
    else set.add(reg);
  }

  /** Removes process `origin`'s watch `id`, if it exists. */
  remove(origin: Origin, id: number): void {
    const regs = this.byOrigin.get(origin);
    const reg = regs?.get(id);
    if (regs === undefined || reg === undefined) return;
    regs.delete(id);
    if (regs.size === 0) this.byOrigin.delete(origin);
    this.unindex(reg);
  }

  /** Removes every watch of process `origin` (it is gone). */
  dropOrigin(origin: Origin): void {
    const regs = this.byOrigin.get(origin);
    if (regs === undefined) return;
    this.byOrigin.delete(origin);
    for (const reg of regs.values()) this.unindex(reg);
  }

  /** Tells the watchers of `key` in `store` about a change: one message per process. */
  changed(
    store: string,
    key: string,
    op: ChangeMessage['o'],
    value: unknown,
    revision: number,
  ): void {
    const index = this.byStore.get(store);
    if (index === undefined) return;
    const byOrigin = new Map<Origin, number[]>();
    const collect = (reg: WatchReg): void => {
      const ids = byOrigin.get(reg.origin);
      if (ids === undefined) byOrigin.set(reg.origin, [reg.id]);
      else ids.push(reg.id);
    };
    const exact = index.byKey.get(key);
    if (exact !== undefined) for (const reg of exact) collect(reg);
    index.byPrefix.forEachMatch(key, collect);
    for (const [origin, ids] of byOrigin) {
      // In the order the process registered them (its watch ids increase).
      if (ids.length > 1) ids.sort((a, b) => a - b);
      const message: ChangeMessage = { w: ids, s: store, k: key, o: op, r: revision };
      if (op === 'set') message.v = value;
      this.send(origin, message);
    }
  }

  /**
   * Sends a change message to one process: to a worker over its link, in order with its answers
   * on the same channel; to the hub itself through its local loop (a copy, delivered after the
   * operation, in order with the hub's other local calls and messages).
   */
  send(origin: Origin, message: ChangeMessage): void {
    this.sendChange(origin === 'primary' ? HUB_ID : origin, Verb.change, message);
  }

  /** Forgets every watch. */
  clear(): void {
    this.byStore.clear();
    this.byOrigin.clear();
  }

  private unindex(reg: WatchReg): void {
    const index = this.byStore.get(reg.store);
    if (index === undefined) return;
    if (reg.key === undefined) {
      index.byPrefix.delete(reg.prefix ?? '', reg);
    } else {
      const set = index.byKey.get(reg.key);
      if (set?.delete(reg) === true && set.size === 0) index.byKey.delete(reg.key);
    }
    if (index.byKey.size === 0 && index.byPrefix.size === 0) this.byStore.delete(reg.store);
  }
}
