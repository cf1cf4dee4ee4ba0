/**
 * The worker side of every implementation: what a worker does with a {@link Job}. Each
 * implementation supplies a {@link WorkerApi} (how to call a peer, how to increment) and feeds
 * the broadcast events it receives to an {@link EventCounter}; the measuring is the same for all.
 *
 * @module
 */
import { CheckError, checkEcho, echoMaker, TICK_FILLER } from './payload.js';
import type { Job, Payload, Report } from './schemas.js';
import { collectGarbage, percentile, pipelined, sequential } from './stats.js';

/** What an implementation offers a worker. */
export interface WorkerApi {
  /** Calls `echo` on worker `target`, through the primary. Resolves with the unchecked reply. */
  echoVia(target: number, payload: Payload): Promise<unknown>;
  /** Increments counter `key` by 1 and resolves with its new value; absent when unsupported. */
  readonly increment: ((key: string) => Promise<number>) | undefined;
  /** Why `increment` is absent. */
  readonly incrementMissing?: string;
}

/** Counts broadcast events, checking that they arrive whole and in order (1, 2, 3, ...). */
export class EventCounter {
  private received = 0;
  private error: string | undefined;
  private waiter: { total: number; resolve: (r: Report) => void } | undefined;

  /** Feeds one event; `event` is whatever the implementation delivered. */
  receive(event: unknown): void {
    const e = event as { n?: unknown; s?: unknown } | null;
    if (
      this.error === undefined &&
      (typeof e !== 'object' ||
        e === null ||
        e.n !== this.received + 1 ||
        typeof e.s !== 'string' ||
        e.s.length !== TICK_FILLER.length)
    ) {
      this.error = `event ${this.received + 1}: got ${JSON.stringify(event)?.slice(0, 80)}`;
    }
    this.received++;
    this.settle();
  }

  /** Resolves once `total` events have arrived (or at the first bad one). */
  until(total: number): Promise<Report> {
    return new Promise((resolve) => {
      this.waiter = { total, resolve };
      this.settle();
    });
  }

  private settle(): void {
    const w = this.waiter;
    if (w === undefined) return;
    if (this.error !== undefined) {
      this.waiter = undefined;
      w.resolve({ kind: 'error', message: this.error });
    } else if (this.received >= w.total) {
      this.waiter = undefined;
      w.resolve(
        this.received === w.total
          ? { kind: 'count', received: this.received }
          : { kind: 'error', message: `expected ${w.total} events, got ${this.received}` },
      );
    }
  }
}

/** Runs a job; never rejects (a failure is an `error` report the primary turns into an abort). */
export async function runJob(job: Job, api: WorkerApi, events: EventCounter): Promise<Report> {
  try {
    return await run(job, api, events);
  } catch (error) {
    return {
      kind: 'error',
      message: error instanceof Error ? (error.stack ?? error.message) : String(error),
    };
  }
}

async function run(job: Job, api: WorkerApi, events: EventCounter): Promise<Report> {
  switch (job.kind) {
    case 'relay-seq': {
      const echo = relayEcho(api, job.target, job.bytes);
      await sequential(job.warmup, echo);
      const latencies = await sequential(job.calls, echo);
      return {
        kind: 'latency',
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        calls: job.calls,
      };
    }
    case 'relay-pipe': {
      const echo = relayEcho(api, job.target, job.bytes);
      await pipelined(job.warmup, job.inflight, echo);
      const ms = await pipelined(job.calls, job.inflight, echo);
      return { kind: 'rate', calls: job.calls, ms };
    }
    case 'count':
      return events.until(job.total);
    case 'incr': {
      const increment = api.increment;
      if (increment === undefined) {
        return { kind: 'skipped', reason: api.incrementMissing ?? 'no counter' };
      }
      const values: number[] = [];
      const ms = await pipelined(job.calls, job.inflight, async () => {
        const v = await increment(job.key);
        if (!Number.isSafeInteger(v)) throw new CheckError(`increment resolved to ${String(v)}`);
        values.push(v);
      });
      return { kind: 'incr', values, ms };
    }
    case 'cpu': {
      const c = process.cpuUsage();
      return { kind: 'cpu', us: c.user + c.system };
    }
    case 'mem': {
      const gc = await collectGarbage();
      const m = process.memoryUsage();
      return { kind: 'mem', rss: m.rss, heapUsed: m.heapUsed, gc };
    }
  }
}

function relayEcho(api: WorkerApi, target: number, bytes: number): (i: number) => Promise<void> {
  const make = echoMaker(bytes) as (i: number) => Payload;
  return async (i) => {
    const sent = make(i);
    checkEcho(sent, await api.echoVia(target, sent));
  };
}
