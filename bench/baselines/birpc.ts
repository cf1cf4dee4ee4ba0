/**
 * birpc over the same channel, used as its README shows: `post`/`on` over `process.send` and
 * `worker.on('message')`, one client per worker in a `createBirpcGroup` on the primary, events
 * with `$callEvent`, default options. Worker -> worker calls go through a `relay` function on the
 * primary. Given a {@link Typing} (birpc-zod.ts), it is the naive typed stack instead.
 *
 * @module
 */
import {
  type BirpcGroup,
  type BirpcReturn,
  type ChannelOptions,
  createBirpc,
  createBirpcGroup,
} from 'birpc';
import { EventCounter, runJob, type WorkerApi } from '../jobs.js';
import type { Job, Payload, Report, StrPayload, Tick } from '../schemas.js';
import { ForkedWorkers, type Session } from '../session.js';

/** Functions a worker exposes. */
interface WorkerFunctions {
  echo(payload: Payload): Payload;
  echoStr(payload: StrPayload): StrPayload;
  run(job: Job): Promise<Report>;
  tick(tick: Tick): void;
}

/** Functions the primary exposes. */
interface PrimaryFunctions {
  relay(target: number, payload: Payload): Promise<Payload>;
}

/** What a typed stack adds: a serializer for every message, and zod where values arrive. */
export interface Typing {
  readonly serialize: (message: unknown) => unknown;
  readonly deserialize: (data: unknown) => unknown;
  /** Validates a payload (the handler's input, the caller's output). */
  readonly payload: (value: unknown) => Payload;
  /** Validates a string payload. */
  readonly strPayload: (value: unknown) => StrPayload;
  /** Validates an event. */
  readonly tick: (value: unknown) => Tick;
}

function channel(
  post: (data: unknown) => void,
  on: (listener: (data: unknown) => void) => void,
  typing: Typing | undefined,
): ChannelOptions {
  if (typing === undefined) return { post, on };
  return { post, on, serialize: typing.serialize, deserialize: typing.deserialize };
}

/** Starts birpc workers: `birpc`, or `birpc+zod` with a typing. */
export async function startBirpc(count: number, typing?: Typing): Promise<Session> {
  const forked = await ForkedWorkers.start(count, typing === undefined ? 'birpc' : 'birpc+zod');
  const index = new Map(forked.list.map((w, i) => [w.id, i]));
  const group: BirpcGroup<WorkerFunctions, PrimaryFunctions> = createBirpcGroup<
    WorkerFunctions,
    PrimaryFunctions
  >(
    { relay: (target, payload) => client(target).echo(payload) },
    forked.list.map((w) =>
      channel(
        (data) => w.send(data as never),
        (listener) => w.on('message', listener),
        typing,
      ),
    ),
  );
  const client = (worker: number): BirpcReturn<WorkerFunctions, PrimaryFunctions> =>
    group.clients[index.get(worker)!]!;
  const validate = typing?.payload;
  return {
    workers: forked.list.map((w) => w.id),
    echo: (worker, payload) => {
      if (!('items' in payload)) {
        const reply = client(worker).echoStr(payload);
        return typing === undefined ? reply : reply.then(typing.strPayload);
      }
      const reply = client(worker).echo(payload);
      return validate === undefined ? reply : reply.then(validate);
    },
    run: (worker, job) => client(worker).run(job),
    publish: (tick) => {
      void group.broadcast.$callEvent('tick', tick);
    },
    failed: forked.failed,
    close: () => forked.stop(),
  };
}

/** A birpc worker: `birpc`, or `birpc+zod` with a typing. */
export function birpcWorker(typing?: Typing): void {
  const events = new EventCounter();
  const rpc = createBirpc<PrimaryFunctions, WorkerFunctions>(
    {
      echo: typing === undefined ? (payload) => payload : typing.payload,
      echoStr: typing === undefined ? (payload) => payload : typing.strPayload,
      run: (job) => runJob(job, api, events),
      tick:
        typing === undefined
          ? (tick) => events.receive(tick)
          : (tick) => events.receive(typing.tick(tick)),
    },
    channel(
      (data) => process.send!(data),
      (listener) => process.on('message', listener),
      typing,
    ),
  );
  const validate = typing?.payload;
  const api: WorkerApi = {
    echoVia:
      validate === undefined
        ? (target, payload) => rpc.relay(target, payload)
        : async (target, payload) => validate(await rpc.relay(target, payload)),
    increment: undefined,
    incrementMissing: 'birpc does not run case F',
  };
  process.send!('ready');
}
