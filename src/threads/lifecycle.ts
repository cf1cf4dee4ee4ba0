/**
 * A pool's threads through their lives: started by the membership, welcomed when they say hello
 * with the same contract, routable once ready, and replaced when they exit (at once after a
 * planned termination, with backoff after a crash). While the pool starts, a thread that fails
 * before it is ready twice in a row fails the start with what it threw.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import { BusError } from '../errors.js';
import { Kind } from '../protocol/envelope.js';
import { fingerprint } from '../protocol/fingerprint.js';
import { Peer, type PeerHandlers } from '../protocol/peer.js';
import { backoffDelay } from '../supervisor/backoff.js';
import type { ResolvedPoolOptions } from './options.js';
import { Place } from './place.js';
import { CLONE_PAYLOADS } from './port-link.js';
import type { ThreadExit, ThreadHandle, ThreadSlots } from './slots.js';
import { THREAD_FLOW_LIMITS, ThreadVerb } from './wire.js';

/** What the lifecycle tells the pool. */
export interface LifecycleEvents {
  /** A thread became ready (or freed room): it may take queued calls. */
  pump(place: Place): void;
  /** A thread left unexpectedly (crash, exit, out of memory): for the pool's `error` event. */
  crashed(error: BusError): void;
  /** Something received that has nobody to reject. */
  report(error: BusError): void;
  /** A thread's exit settled calls (the pool may be drained now). */
  settled(): void;
}

/** Describes what a thread died of, for messages. */
export function describeExit(exit: ThreadExit): string {
  const e = exit.error;
  if (e === undefined) return `exited with code ${exit.exitCode}`;
  let why: string;
  try {
    const code = (e as { code?: unknown }).code;
    const tag = typeof code === 'string' ? ` [${code}]` : '';
    why = e instanceof Error ? `${e.name}${tag}: ${e.message}` : String(e);
  } catch {
    why = 'an error that could not be described';
  }
  return `died of ${why}`;
}

/** A hint for the classic start failure: a `.ts` thread on Node 20 under tsx. */
function hint(exit: ThreadExit): string {
  const code = (exit.error as { code?: unknown } | undefined)?.code;
  return code === 'ERR_UNKNOWN_FILE_EXTENSION'
    ? ' (Node 20 does not pass loader hooks such as tsx on to worker threads: start the thread from a module that registers them, see docs/threads.md)'
    : '';
}

/** The places of one pool and the lives of their threads. */
export class Lifecycle {
  readonly places: Place[];
  private readonly hash: string;
  private started = false;
  private stopped = false;
  private startResolve!: () => void;
  private startReject!: (error: BusError) => void;
  /** Settles once every thread is ready, or with the first start failure. */
  readonly start: Promise<void>;
  restarts = 0;

  constructor(
    contract: Contract,
    private readonly options: ResolvedPoolOptions,
    private readonly slots: ThreadSlots,
    private readonly events: LifecycleEvents,
  ) {
    this.hash = fingerprint(contract).hash;
    this.places = Array.from({ length: options.threads }, (_, i) => new Place(i));
    this.start = new Promise<void>((resolve, reject) => {
      this.startResolve = resolve;
      this.startReject = reject;
    });
    slots.onJoined((id, link) => {
      const index = slots.indexOf(id);
      if (index === undefined) return;
      const place = this.places[index]!;
      place.peer = new Peer(
        link,
        `thread ${index}`,
        this.handlers(place),
        'TARGET_EXITED',
        THREAD_FLOW_LIMITS,
        CLONE_PAYLOADS,
      );
      // A call given up on whose answer arrives anyway (the handler returned before it saw the
      // cancel): its handler is done, the thread may take calls again. After the peer's listener.
      link.onMessage((message) => {
        if (place.lingering.size > 0) this.answeredLate(place, message);
      });
    });
  }

  private answeredLate(place: Place, message: unknown): void {
    const m = message as { k?: unknown; i?: unknown; f?: unknown };
    const frames = m.k === Kind.batch && Array.isArray(m.f) ? (m.f as (typeof m)[]) : [m];
    for (const f of frames) {
      if ((f.k !== Kind.response && f.k !== Kind.error) || typeof f.i !== 'number') continue;
      const lingering = place.lingering.get(f.i);
      if (lingering === undefined) continue;
      lingering.clear();
      place.lingering.delete(f.i);
      this.events.pump(place);
    }
  }

  /** Starts every thread. */
  spawnAll(): void {
    for (const place of this.places) this.spawn(place);
  }

  /** Fails the start (if still under way) with `error`. */
  failStart(error: BusError): void {
    if (this.started) return;
    this.started = true;
    this.startReject(error);
  }

  /** Stops replacing threads (on close). */
  stop(): void {
    this.stopped = true;
    for (const place of this.places) clearTimeout(place.respawn);
  }

  private spawn(place: Place): void {
    place.respawn = undefined;
    place.planned = false;
    try {
      place.handle = this.slots.spawn(place.index);
    } catch (error) {
      this.failStart(
        new BusError('INVALID_ARGUMENT', `createPool: cannot start a thread: ${String(error)}`, {
          cause: error,
        }),
      );
    }
  }

  private handlers(place: Place): PeerHandlers {
    return {
      request: (peer, frame) => {
        peer.fail(frame.i, new BusError('NO_HANDLER', 'a pool serves no calls from its threads'));
      },
      event: (_peer, frame) => {
        if (frame.m !== ThreadVerb.settled || typeof frame.p !== 'number') {
          this.events.report(
            new BusError('PROTOCOL', `thread ${place.index} sent an event the pool does not take`),
          );
          return;
        }
        const lingering = place.lingering.get(frame.p);
        if (lingering === undefined) return;
        lingering.clear();
        place.lingering.delete(frame.p);
        this.events.pump(place);
      },
      control: (peer, frame) => {
        if (frame.k === Kind.hello) {
          if (frame.h !== this.hash) {
            const error = new BusError(
              'CONTRACT_MISMATCH',
              `thread ${place.index} connected with a contract that differs from the pool's`,
            );
            peer.send({ k: Kind.welcome, w: place.index, e: error.toJSON() });
            this.failStart(error);
            this.events.report(error);
            return;
          }
          peer.send({ k: Kind.welcome, w: place.index });
        } else if (frame.k === Kind.ready) {
          place.ready = true;
          place.everReady = true;
          place.startFailures = 0;
          place.readyAt = performance.now();
          if (!this.started && this.places.every((p) => p.ready)) {
            this.started = true;
            this.startResolve();
          }
          this.events.pump(place);
        }
      },
      invalid: (_peer, reason, code) =>
        this.events.report(new BusError(code ?? 'PROTOCOL', `thread ${place.index}: ${reason}`)),
      closed: () => {},
    };
  }

  /** A thread ended: its calls reject with `TARGET_EXITED`, and it is replaced. */
  exited(handle: ThreadHandle, exit: ThreadExit): void {
    const place = this.places[handle.index]!;
    if (place.handle !== handle) return;
    const how = place.planned
      ? `was terminated: a cancelled handler did not return within abortGraceMs (${this.options.abortGraceMs} ms)`
      : describeExit(exit);
    place.ready = false;
    place.handle = undefined;
    place.clearLingering();
    place.peer?.close('TARGET_EXITED', `thread ${place.index} ${how}`);
    place.peer = undefined;
    this.events.settled();
    if (this.stopped) return;
    if (!this.started && !place.everReady) {
      place.startFailures++;
      if (place.startFailures >= 2) {
        this.failStart(
          new BusError(
            'STARTUP_FAILED',
            `createPool: thread ${place.index} ${how} before it connected, twice in a row${hint(exit)}`,
            {
              ...(exit.error === undefined ? {} : { cause: exit.error }),
              data: { thread: place.index, exitCode: exit.exitCode },
            },
          ),
        );
        return;
      }
    }
    const planned = place.planned;
    if (!planned && place.everReady) {
      this.events.crashed(
        new BusError('TARGET_EXITED', `thread ${place.index} ${how}; it is replaced`, {
          ...(exit.error === undefined ? {} : { cause: exit.error }),
          data: { thread: place.index, exitCode: exit.exitCode },
        }),
      );
    }
    const o = this.options;
    const livedMs = place.readyAt === 0 ? 0 : performance.now() - place.readyAt;
    place.crashes = planned ? 0 : livedMs >= o.restartResetAfterMs ? 1 : place.crashes + 1;
    place.readyAt = 0;
    const delayMs = planned ? 0 : backoffDelay(place.crashes, o.restartInitialMs, o.restartMaxMs);
    place.restarts++;
    this.restarts++;
    place.respawn = setTimeout(() => {
      if (!this.stopped) this.spawn(place);
    }, delayMs);
  }

  /** A cancelled call's handler did not return within `abortGraceMs`: replace its thread. */
  terminate(place: Place): void {
    if (place.handle === undefined || this.stopped) return;
    place.planned = true;
    place.ready = false;
    place.handle.terminate();
  }
}
