/**
 * raw-json: the floor. A hand-written request/response over `process.send`/`worker.send` (Node's
 * default JSON serialization): an id counter and a Map of resolvers, nothing else: no envelope
 * marker, no validation, no timeouts, no error path, no batching. Worker -> worker calls are
 * relayed by the primary by a `t` (target) field, with `f` (from) for the way back.
 *
 * raw-batched: the channel's ceiling. The same, except that every message sent in one tick goes
 * in one `send` (`{ b: [...] }`, flushed on `process.nextTick`), on both sides; events go 64 per
 * send (`{ eb: [...] }`).
 *
 * @module
 */
import type { Worker } from 'node:cluster';
import { EventCounter, runJob, type WorkerApi } from '../jobs.js';
import type { Job, Report, Tick } from '../schemas.js';
import { ForkedWorkers, type Session } from '../session.js';

/** Every raw message: a request (`m`), a response (`r`), an event (`e`), or a batch (`b`, `eb`). */
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
  /** raw-batched: the messages of one tick. */
  b?: RawMessage[];
  /** raw-batched: up to {@link EVENT_BATCH} events. */
  eb?: unknown[];
}

/** raw-batched: events per send. */
export const EVENT_BATCH = 64;

type RawHandler = (arg: unknown) => unknown;

/** `send`, or with `batched` a send that coalesces the messages of one tick into one. */
function sender(send: (m: RawMessage) => void, batched: boolean): (m: RawMessage) => void {
  if (!batched) return send;
  let out: RawMessage[] = [];
  const flush = () => {
    const b = out;
    out = [];
    send(b.length === 1 ? b[0]! : { b });
  };
  return (m) => {
    if (out.push(m) === 1) process.nextTick(flush);
  };
}

/** One end of the raw protocol. */
export class RawEndpoint {
  private next = 0;
  private readonly pending = new Map<number, (result: unknown) => void>();
  private readonly send: (message: RawMessage) => void;

  constructor(
    send: (message: RawMessage) => void,
    private readonly handlers: Readonly<Record<string, RawHandler>>,
    private readonly onEvent: (event: unknown) => void = () => {},
    batched = false,
  ) {
    this.send = sender(send, batched);
  }

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
    if (msg.b !== undefined) {
      for (const m of msg.b) this.receive(m);
    } else if (msg.m !== undefined) {
      const result = this.handlers[msg.m]!(msg.a);
      if (result instanceof Promise) result.then((r: unknown) => this.reply(msg, r));
      else this.reply(msg, result);
    } else if (msg.eb !== undefined) {
      for (const e of msg.eb) this.onEvent(e);
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
 * Starts raw-json (or raw-batched) workers. The primary handles `incr` (a Map of counters: the
 * floor of case F) and relays every message that carries a target.
 */
export async function startRaw(
  count: number,
  impl: 'raw-json' | 'raw-batched' | 'redis' = 'raw-json',
): Promise<Session> {
  const batched = impl === 'raw-batched';
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
    const ep = new RawEndpoint((m) => w.send(m), handlers, undefined, batched);
    endpoints.set(w.id, ep);
    const route = (msg: RawMessage) => {
      if (msg.b !== undefined) for (const m of msg.b) route(m);
      else if (msg.t === undefined) ep.receive(msg);
      else if (msg.m !== undefined)
        byId.get(msg.t)!.send({ i: msg.i, m: msg.m, a: msg.a, f: w.id });
      else byId.get(msg.t)!.send({ i: msg.i, r: msg.r });
    };
    w.on('message', route);
  }
  return {
    workers: forked.list.map((w) => w.id),
    echo: (worker, payload) => endpoints.get(worker)!.call('echo', payload),
    callAll: (payload) =>
      Promise.all(forked.list.map((w) => endpoints.get(w.id)!.call('echo', payload))),
    run: (worker, job) => endpoints.get(worker)!.call('run', job) as Promise<Report>,
    publish: batched ? eventBatcher(forked.list) : (tick) => sendToAll(forked.list, { e: tick }),
    failed: forked.failed,
    close: () => forked.stop(),
  };
}

function sendToAll(workers: readonly Worker[], message: RawMessage): void {
  for (const w of workers) w.send(message);
}

/** raw-batched's publish: {@link EVENT_BATCH} events per send, the rest at the end of the tick. */
function eventBatcher(workers: readonly Worker[]): (tick: Tick) => void {
  let out: Tick[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (out.length === 0) return;
    const eb = out;
    out = [];
    sendToAll(workers, { eb });
  };
  return (tick) => {
    out.push(tick);
    if (out.length >= EVENT_BATCH) flush();
    else if (!scheduled) {
      scheduled = true;
      process.nextTick(flush);
    }
  };
}

/**
 * A raw worker: echoes, runs jobs, counts events. `increment` defaults to the primary's `incr`;
 * the Redis baseline passes its own.
 */
export function rawWorker(increment?: (key: string) => Promise<number>, batched = false): void {
  const events = new EventCounter();
  const api: WorkerApi = {
    echoVia: (target, payload) => ep.call('echo', payload, target),
    increment: increment ?? ((key) => ep.call('incr', { k: key, by: 1 }) as Promise<number>),
  };
  const ep = new RawEndpoint(
    (m) => process.send!(m),
    { echo: (a) => a, run: (job) => runJob(job as Job, api, events) },
    (e) => events.receive(e),
    batched,
  );
  process.on('message', (m: RawMessage) => ep.receive(m));
  process.send!('ready');
}
