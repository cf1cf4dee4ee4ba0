/**
 * raw-json: the floor. A hand-written request/response over `process.send`/`worker.send` (Node's
 * default JSON serialization): an id counter and a Map of resolvers, nothing else: no envelope
 * marker, no validation, no timeouts, no error path, no batching. Worker -> worker calls are
 * relayed by the primary by a `t` (target) field, with `f` (from) for the way back.
 *
 * @module
 */
import type { Worker } from 'node:cluster';
import { EventCounter, runJob, type WorkerApi } from '../jobs.js';
import type { Job, Report } from '../schemas.js';
import { ForkedWorkers, type Session } from '../session.js';

/** Every raw message: a request (`m`), a response (`r`), or an event (`e`). */
interface RawMessage {
  i?: number;
  m?: string;
  a?: unknown;
  r?: unknown;
  e?: unknown;
  /** Route to worker `t` (set by the sender, read by the primary). */
  t?: number;
  /** Relayed from worker `f` (set by the primary): the reply goes back with `t: f`. */
  f?: number;
}

type RawHandler = (arg: unknown) => unknown;

/** One end of the raw protocol. */
export class RawEndpoint {
  private next = 0;
  private readonly pending = new Map<number, (result: unknown) => void>();

  constructor(
    private readonly send: (message: RawMessage) => void,
    private readonly handlers: Readonly<Record<string, RawHandler>>,
    private readonly onEvent: (event: unknown) => void = () => {},
  ) {}

  /** Calls `method` on the other end (or on worker `target`, through the primary). */
  call(method: string, arg: unknown, target?: number): Promise<unknown> {
    const i = ++this.next;
    return new Promise((resolve) => {
      this.pending.set(i, resolve);
      this.send(
        target === undefined ? { i, m: method, a: arg } : { i, m: method, a: arg, t: target },
      );
    });
  }

  /** Feeds one message received from the other end. */
  receive(msg: RawMessage): void {
    if (msg.m !== undefined) {
      const result = this.handlers[msg.m]!(msg.a);
      if (result instanceof Promise) result.then((r: unknown) => this.reply(msg, r));
      else this.reply(msg, result);
    } else if (msg.e !== undefined) {
      this.onEvent(msg.e);
    } else {
      const resolve = this.pending.get(msg.i!);
      this.pending.delete(msg.i!);
      resolve?.(msg.r);
    }
  }

  private reply(msg: RawMessage, r: unknown): void {
    this.send(msg.f === undefined ? { i: msg.i, r } : { i: msg.i, r, t: msg.f });
  }
}

/**
 * Starts raw-json workers. The primary handles `incr` (a Map of counters: the floor of case F)
 * and relays every message that carries a target.
 */
export async function startRaw(
  count: number,
  impl: 'raw-json' | 'redis' = 'raw-json',
): Promise<Session> {
  const forked = await ForkedWorkers.start(count, impl);
  const counters = new Map<string, number>();
  const handlers: Record<string, RawHandler> = {
    incr: (arg) => {
      const { k, by } = arg as { k: string; by: number };
      const v = (counters.get(k) ?? 0) + by;
      counters.set(k, v);
      return v;
    },
  };
  const byId = new Map<number, Worker>(forked.list.map((w) => [w.id, w]));
  const endpoints = new Map<number, RawEndpoint>();
  for (const w of forked.list) {
    const ep = new RawEndpoint((m) => w.send(m), handlers);
    endpoints.set(w.id, ep);
    w.on('message', (msg: RawMessage) => {
      if (msg.t === undefined) ep.receive(msg);
      else if (msg.m !== undefined)
        byId.get(msg.t)!.send({ i: msg.i, m: msg.m, a: msg.a, f: w.id });
      else byId.get(msg.t)!.send({ i: msg.i, r: msg.r });
    });
  }
  return {
    workers: forked.list.map((w) => w.id),
    echo: (worker, payload) => endpoints.get(worker)!.call('echo', payload),
    run: (worker, job) => endpoints.get(worker)!.call('run', job) as Promise<Report>,
    publish: (tick) => {
      for (const w of forked.list) w.send({ e: tick });
    },
    failed: forked.failed,
    close: () => forked.stop(),
  };
}

/**
 * A raw-json worker: echoes, runs jobs, counts events. `increment` defaults to the primary's
 * `incr`; the Redis baseline passes its own.
 */
export function rawWorker(increment?: (key: string) => Promise<number>): void {
  const events = new EventCounter();
  const api: WorkerApi = {
    echoVia: (target, payload) => ep.call('echo', payload, target),
    increment: increment ?? ((key) => ep.call('incr', { k: key, by: 1 }) as Promise<number>),
  };
  const ep = new RawEndpoint(
    (m) => process.send!(m),
    { echo: (a) => a, run: (job) => runJob(job as Job, api, events) },
    (e) => events.receive(e),
  );
  process.on('message', (m: RawMessage) => ep.receive(m));
  process.send!('ready');
}
