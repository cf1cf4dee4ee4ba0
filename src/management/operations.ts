/**
 * The operations the management API starts: rolling restarts (`POST /restart`, followed with
 * `GET /restart/:id`) and scaling (`POST /scale`), each run by the app in the background and
 * recorded with its progress; and the one decision on a scale request's count (the 409).
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Contract } from '../contract.js';
import { toBusError } from '../errors.js';
import type { ClusterApp, RestartResult } from '../supervisor/cluster.js';
import type { RestartProgress, ScaleProgress } from './types.js';

/** The bounds of a scale request: `min` >= 1, `max` null when unbounded. */
export interface ScaleBounds {
  readonly min: number;
  readonly max: number | null;
}

/** How many finished restarts `GET /restart/:id` still knows. */
const KEPT_RESTARTS = 16;

/**
 * @internal The bounds from the cluster's options, read defensively: `minWorkers` and
 * `maxWorkers` when the options have them (else 1, and unbounded).
 */
export function scaleBounds(...sources: readonly object[]): ScaleBounds {
  const pick = (key: 'minWorkers' | 'maxWorkers'): number | undefined => {
    for (const source of sources) {
      const value = (source as { readonly [k: string]: unknown })[key];
      if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) return value;
    }
    return undefined;
  };
  return { min: pick('minWorkers') ?? 1, max: pick('maxWorkers') ?? null };
}

/**
 * @internal Why a scale to `count` slots is refused with 409 (outside `bounds`), or undefined when
 * it may go ahead.
 */
export function scaleConflict(count: number, bounds: ScaleBounds): string | undefined {
  if (count < bounds.min) return `workers ${count} is below the minimum of ${bounds.min}`;
  if (bounds.max !== null && count > bounds.max) {
    return `workers ${count} is above the maximum of ${bounds.max}`;
  }
  return undefined;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** @internal The operations one management server started, and their progress. */
export class Operations {
  private readonly restarts = new Map<string, Mutable<RestartProgress>>();
  private running: { readonly promise: Promise<RestartResult>; readonly id: string } | undefined;
  private scaling: Mutable<ScaleProgress> | undefined;
  /** Replacements of the running restart, by new worker id, not ready yet. */
  private readonly pending = new Set<number>();
  private readonly off: (() => void)[] = [];

  constructor(private readonly app: ClusterApp<Contract>) {
    const onReplace = ({ replacementId, reason }: { replacementId: number; reason: string }) => {
      if (reason === 'restart' && this.running !== undefined) this.pending.add(replacementId);
    };
    const onReady = ({ workerId }: { workerId: number }) => {
      if (!this.pending.delete(workerId) || this.running === undefined) return;
      const record = this.restarts.get(this.running.id);
      if (record !== undefined) record.replaced = Math.min(record.total, record.replaced + 1);
    };
    app.on('worker:replace', onReplace);
    app.on('worker:ready', onReady);
    this.off.push(
      () => app.off('worker:replace', onReplace),
      () => app.off('worker:ready', onReady),
    );
  }

  /**
   * Starts a rolling restart (or joins the one running: `app.restart()` returns it) and returns
   * its record.
   */
  restart(): RestartProgress {
    const promise = this.app.restart();
    if (this.running?.promise === promise) return this.restarts.get(this.running.id)!;
    const record: Mutable<RestartProgress> = {
      id: randomUUID(),
      state: 'running',
      startedAt: Date.now(),
      endedAt: null,
      total: this.app.slots.slots.filter((s) => !s.retired).length,
      replaced: 0,
      slots: [],
      error: null,
    };
    this.restarts.set(record.id, record);
    for (const id of [...this.restarts.keys()].slice(0, -KEPT_RESTARTS)) this.restarts.delete(id);
    this.running = { promise, id: record.id };
    this.pending.clear();
    promise.then(
      (result) => {
        record.state = 'done';
        record.replaced = result.replaced.length;
        record.total = Math.max(record.total, result.replaced.length);
        record.slots = result.replaced.map((r) => ({
          slot: r.slot,
          from: r.from ?? null,
          to: r.to,
        }));
        this.finish(record);
      },
      (error: unknown) => {
        const e = toBusError(error, 'INVALID_ARGUMENT');
        record.state = 'failed';
        record.error = { code: e.code, message: e.message };
        this.finish(record);
      },
    );
    return record;
  }

  private finish(record: Mutable<RestartProgress>): void {
    record.endedAt = Date.now();
    if (this.running?.id === record.id) this.running = undefined;
    this.pending.clear();
  }

  /** A restart's record by id. */
  restartById(id: string): RestartProgress | undefined {
    return this.restarts.get(id);
  }

  /** The last restart started here, or null. */
  lastRestart(): RestartProgress | null {
    return [...this.restarts.values()].at(-1) ?? null;
  }

  /** Starts scaling to `count` slots (already checked against the bounds) and returns its record. */
  scale(count: number): ScaleProgress {
    const record: Mutable<ScaleProgress> = {
      id: randomUUID(),
      state: 'running',
      from: this.app.slots.slots.length,
      to: count,
      startedAt: Date.now(),
      endedAt: null,
      error: null,
    };
    this.scaling = record;
    this.app.scale(count).then(
      (result) => {
        record.state = 'done';
        record.from = result.from;
        record.endedAt = Date.now();
      },
      (error: unknown) => {
        const e = toBusError(error, 'INVALID_ARGUMENT');
        record.state = 'failed';
        record.error = { code: e.code, message: e.message };
        record.endedAt = Date.now();
      },
    );
    return record;
  }

  /** The last scaling started here, or null. */
  lastScale(): ScaleProgress | null {
    return this.scaling ?? null;
  }

  /** Stops listening. The operations running go on (the app's close ends them). */
  close(): void {
    for (const off of this.off.splice(0)) off();
  }
}
