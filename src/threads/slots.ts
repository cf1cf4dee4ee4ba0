/**
 * The worker-threads transport's membership: it starts the pool's threads (`new Worker`, one per
 * index), hands each one's {@link PortLink} to the listeners as it joins, and tells them when it
 * is gone, with its exit code and the error it died of. It knows threads, not frames: who
 * replaces a thread, and when, is the pool's decision.
 *
 * @module
 */
import { type ResourceLimits, Worker } from 'node:worker_threads';
import { HUB_ID, type PeerId } from '../core/extension.js';
import type { Link } from '../transport/link.js';
import type { Membership } from '../transport/membership.js';
import { type Framed, PortLink } from './port-link.js';

/** How threads are started. */
export interface SpawnOptions {
  readonly file: string | URL;
  readonly workerData: unknown;
  readonly resourceLimits: ResourceLimits | undefined;
  readonly execArgv: readonly string[] | undefined;
}

/** How a thread ended. */
export interface ThreadExit {
  /** Its exit code (1 after an uncaught exception or running out of memory). */
  readonly exitCode: number;
  /** What it threw (the `error` event of its Worker), if anything. */
  readonly error: unknown;
}

/** One running thread, as the membership knows it. */
export interface ThreadHandle {
  /** Its {@link PeerId}: Node's `threadId`. */
  readonly id: PeerId;
  /** Its index in the pool. */
  readonly index: number;
  readonly link: PortLink;
  /** Terminates it (its `exit` follows). */
  terminate(): void;
}

/** The pool's threads: a {@link Membership} that starts them. */
export class ThreadSlots implements Membership {
  readonly self: PeerId = HUB_ID;
  private readonly joined = new Set<(id: PeerId, link: Link) => void>();
  private readonly gone = new Set<(id: PeerId) => void>();
  private readonly running = new Map<PeerId, Worker>();
  private readonly indexes = new Map<PeerId, number>();
  private closed = false;

  /**
   * @param exited - told of each thread's end, before the `gone` listeners, with how it ended.
   * @param refused - a message the thread's link could not post (see {@link PortLink}).
   */
  constructor(
    private readonly options: SpawnOptions,
    private readonly exited: (handle: ThreadHandle, exit: ThreadExit) => void,
    private readonly refused: (handle: ThreadHandle, message: Framed, error: unknown) => void,
  ) {}

  onJoined(listener: (id: PeerId, link: Link) => void): () => void {
    this.joined.add(listener);
    return () => this.joined.delete(listener);
  }

  onGone(listener: (id: PeerId) => void): () => void {
    this.gone.add(listener);
    return () => this.gone.delete(listener);
  }

  /** The index of running thread `id`. */
  indexOf(id: PeerId): number | undefined {
    return this.indexes.get(id);
  }

  /** Threads running (not yet exited). */
  get size(): number {
    return this.running.size;
  }

  /** Starts a thread for `index`; its link is handed to the `joined` listeners at once. */
  spawn(index: number): ThreadHandle {
    const o = this.options;
    const worker = new Worker(o.file, {
      workerData: o.workerData,
      ...(o.resourceLimits === undefined ? {} : { resourceLimits: o.resourceLimits }),
      ...(o.execArgv === undefined ? {} : { execArgv: [...o.execArgv] }),
    });
    let error: unknown;
    worker.on('error', (e) => {
      error = e;
    });
    const id = worker.threadId;
    // The membership's exit listener runs before the link's, so the pool knows why it closed.
    worker.once('exit', (exitCode) => {
      this.running.delete(id);
      this.indexes.delete(id);
      this.exited(handle, { exitCode, error });
    });
    // The pool posts each call as it is issued (its input is copied then); no coalescing.
    const link = new PortLink(worker, worker, 'exit', (message, e) =>
      this.refused(handle, message, e),
    );
    const handle: ThreadHandle = {
      id,
      index,
      link,
      terminate: () => {
        worker.terminate().catch(() => {});
      },
    };
    this.running.set(id, worker);
    this.indexes.set(id, index);
    link.onClose(() => {
      if (!this.closed) for (const l of [...this.gone]) l(id);
    });
    for (const l of [...this.joined]) l(id, link);
    return handle;
  }

  /**
   * Terminates every running thread and resolves once all have exited. The membership stops
   * telling joins and goings.
   */
  async terminateAll(): Promise<void> {
    const workers = [...this.running.values()];
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            w.terminate().catch(() => resolve());
          }),
      ),
    );
  }

  close(): void {
    this.closed = true;
    this.joined.clear();
    this.gone.clear();
  }
}
