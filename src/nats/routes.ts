/**
 * The hub's calls across the mesh, over NATS request/reply: to one worker of another node, to
 * `'any'` worker of the mesh (a NATS queue group), to every worker of every node (one request per
 * node), and the events to every other node. Each call settles on every path: its reply, its
 * timeout, its abort (a cancel reaches the remote handler), no responders, the loss of the node
 * it went to (presence), the mesh's close.
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { MeshRoutes, RouteOptions } from '../core/mesh.js';
import { BusError, type BusErrorJSON } from '../errors.js';
import type { Encoded, GatherItem } from '../protocol/envelope.js';
import type { Presence } from './presence.js';
import {
  fromBytes,
  payload,
  type Subjects,
  toBytes,
  type WireReply,
  type WireRequest,
} from './wire.js';

/** Extra time a gather's request to a node gets beyond the per-worker timeout, in ms. */
const GATHER_GRACE_MS = 1_000;

interface InFlight {
  readonly node: string | undefined;
  fail(error: BusError): void;
}

/** The outbound side of the mesh. */
export class NatsRoutes implements MeshRoutes {
  private seq = 0;
  private readonly inFlight = new Set<InFlight>();
  private closedWith: BusError | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly presence: Presence,
    readonly node: string,
    readonly localFirst: boolean,
  ) {}

  /** Calls in flight across the mesh (for leak checks). */
  get pendingCount(): number {
    return this.inFlight.size;
  }

  call(
    node: string,
    worker: number,
    method: string,
    body: Encoded,
    options: RouteOptions,
  ): Promise<Encoded> {
    const label = `call '${method}' to worker ${worker} on node '${node}'`;
    if (this.presence.isGone(node)) {
      return Promise.reject(
        new BusError('NO_TARGET', `${label}: node '${node}' is gone (not heard from)`),
      );
    }
    if (this.presence.mismatch(node)) {
      return Promise.reject(
        new BusError(
          'CONTRACT_MISMATCH',
          `${label}: node '${node}' runs a different contract (its fingerprint differs)`,
        ),
      );
    }
    return this.request(
      node,
      this.subjects.call(node),
      { m: method, w: worker, ...payload(body) },
      options,
      label,
    ).then((reply) => payload(reply));
  }

  any(method: string, body: Encoded, options: RouteOptions): Promise<Encoded> {
    const label = `call '${method}' to any worker of the mesh`;
    return this.request(
      undefined,
      this.subjects.any(method),
      { m: method, ...payload(body) },
      options,
      label,
    ).then((reply) => payload(reply));
  }

  async gather(method: string, body: Encoded, options: RouteOptions): Promise<GatherItem[]> {
    const nodes = this.presence.live();
    const per = await Promise.all(
      nodes.map((node) => {
        const label = `callAll '${method}' on node '${node}'`;
        const timeoutMs = options.timeoutMs + GATHER_GRACE_MS;
        return this.request(
          node,
          this.subjects.all(node),
          { m: method, ...payload(body) },
          { timeoutMs, signal: options.signal },
          label,
          options.timeoutMs,
        ).then(
          (reply) => (reply.a ?? []).map((item) => ({ ...item, o: node })),
          (error: unknown) => {
            if (
              error instanceof BusError &&
              (error.code === 'ABORTED' || error.code === 'CLOSED')
            ) {
              throw error;
            }
            const e: BusErrorJSON = (
              error instanceof BusError ? error : new BusError('PROTOCOL', String(error))
            ).toJSON();
            return this.presence.workersOf(node).map((w): GatherItem => ({ w, o: node, e }));
          },
        );
      }),
    );
    return per.flat();
  }

  publish(topic: string, body: Encoded, source: number): void {
    if (this.closedWith !== undefined) return;
    const bytes = toBytes({ n: this.node, s: source, t: topic, ...payload(body) });
    this.checkSize(bytes, `publish '${topic}' to the mesh`);
    this.nc.publish(this.subjects.events, bytes);
  }

  /** Rejects every call in flight to `node` (it is gone) with `TARGET_EXITED`. */
  nodeGone(node: string): void {
    for (const f of [...this.inFlight]) {
      if (f.node === node) {
        f.fail(
          new BusError(
            'TARGET_EXITED',
            `node '${node}' is gone (not heard from) while the call was in flight`,
          ),
        );
      }
    }
  }

  /**
   * This node's NATS connection was lost: a reply to a call in flight would be lost with it, so
   * each rejects with `TARGET_EXITED` at once (the call may or may not have run).
   */
  connectionLost(): void {
    for (const f of [...this.inFlight]) {
      f.fail(
        new BusError(
          'TARGET_EXITED',
          "this node's NATS connection was lost while the call was in flight (it may or may not have run)",
        ),
      );
    }
  }

  /** Rejects every call in flight with `CLOSED`; new ones reject with it too. */
  close(): void {
    this.closedWith = new BusError('CLOSED', 'the mesh was closed');
    for (const f of [...this.inFlight]) f.fail(this.closedWith);
  }

  /** @throws BusError `PAYLOAD_TOO_LARGE` over the server's `max_payload`. */
  private checkSize(bytes: Uint8Array, label: string): void {
    const max = this.nc.info?.max_payload ?? 1_048_576;
    if (bytes.length > max) {
      throw new BusError(
        'PAYLOAD_TOO_LARGE',
        `${label}: ${bytes.length} bytes is over the NATS server's max_payload (${max} bytes); not sent`,
        { data: { bytes: bytes.length, maxPayloadBytes: max } },
      );
    }
  }

  /** One NATS request, settled on every path. */
  private request(
    node: string | undefined,
    subject: string,
    body: Omit<WireRequest, 'c' | 'd'>,
    options: RouteOptions,
    label: string,
    remoteTimeoutMs = options.timeoutMs,
  ): Promise<WireReply> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    const signal = options.signal;
    if (signal?.aborted)
      return Promise.reject(
        new BusError('ABORTED', `${label} was aborted`, { cause: signal.reason }),
      );
    const c = `${this.node}:${++this.seq}`;
    let bytes: Uint8Array;
    try {
      bytes = toBytes({ ...body, c, d: remoteTimeoutMs });
      this.checkSize(bytes, label);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<WireReply>((resolve, reject) => {
      let done = false;
      const entry: InFlight = {
        node,
        fail: (error) => {
          if (done) return;
          settle();
          this.cancel(c);
          reject(error);
        },
      };
      const onAbort = () =>
        entry.fail(new BusError('ABORTED', `${label} was aborted`, { cause: signal?.reason }));
      const settle = () => {
        done = true;
        this.inFlight.delete(entry);
        signal?.removeEventListener('abort', onAbort);
      };
      this.inFlight.add(entry);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.nc.request(subject, bytes, { timeout: options.timeoutMs }).then(
        (msg) => {
          if (done) return;
          settle();
          try {
            const reply = fromBytes(msg.data, `${label}: reply`) as WireReply;
            if (reply.e !== undefined) reject(BusError.fromJSON(reply.e));
            else resolve(reply);
          } catch (error) {
            reject(error);
          }
        },
        (error: unknown) => {
          if (done) return;
          settle();
          reject(this.requestError(error, label, options.timeoutMs, node === undefined));
          if (isTimeout(error)) this.cancel(c);
        },
      );
    });
  }

  /** Tells the node serving request `c` that its caller gave up. */
  private cancel(c: string): void {
    if (this.nc.isClosed()) return;
    this.nc.publish(this.subjects.cancelAll, toBytes({ c }));
  }

  private requestError(error: unknown, label: string, timeoutMs: number, any: boolean): BusError {
    if (error instanceof BusError) return error;
    if (isNoResponders(error)) {
      return any
        ? new BusError('NO_HANDLER', `${label}: no worker of the mesh handles it (no responders)`)
        : new BusError('NO_TARGET', `${label}: the node is not in the mesh (no responders)`);
    }
    if (isTimeout(error))
      return new BusError('TIMEOUT', `${label} timed out after ${timeoutMs} ms`);
    if (this.nc.isClosed())
      return new BusError('CLOSED', `${label}: the NATS connection is closed`);
    return new BusError(
      'TARGET_EXITED',
      `${label}: ${(error as Error)?.message ?? String(error)}`,
      { cause: error },
    );
  }
}

function isNoResponders(error: unknown): boolean {
  const e = error as { name?: string; isNoResponders?: () => boolean; cause?: { name?: string } };
  return (
    e?.name === 'NoRespondersError' ||
    e?.cause?.name === 'NoRespondersError' ||
    (typeof e?.isNoResponders === 'function' && e.isNoResponders())
  );
}

function isTimeout(error: unknown): boolean {
  const e = error as { name?: string; cause?: { name?: string } };
  return e?.name === 'TimeoutError' || e?.cause?.name === 'TimeoutError';
}

/** Decodes a request body received from another node. @throws BusError `PROTOCOL`. */
export function parseRequest(data: Uint8Array): WireRequest {
  const r = fromBytes(data, 'mesh request');
  if (typeof r.m !== 'string' || typeof r.c !== 'string' || typeof r.d !== 'number' || !(r.d > 0)) {
    throw new BusError('PROTOCOL', 'mesh request: malformed');
  }
  if (r.w !== undefined && !(Number.isSafeInteger(r.w) && (r.w as number) > 0)) {
    throw new BusError('PROTOCOL', 'mesh request: malformed worker id');
  }
  return r as unknown as WireRequest;
}
