/**
 * One node of a NATS mesh: its connection (one per node, held by the primary), its presence
 * heartbeats, the requests and events it serves for the other nodes (routed by the hub to its
 * workers), and the shared state on JetStream KV. `natsMesh()` makes the factory `startCluster`
 * takes.
 *
 * @module
 */
import { connect, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Contract } from '../contract.js';
import type { LocalRoutes, MeshFactory, MeshView, RunningMesh } from '../core/mesh.js';
import { BusError, toBusError } from '../errors.js';
import { fingerprint } from '../protocol/fingerprint.js';
import { NatsMeshConfig } from './config.js';
import type { MirroredBucket } from './kv-bucket.js';
import { KvStateHost } from './kv-host.js';
import { type NatsMeshOptions, type ResolvedMeshOptions, resolveMeshOptions } from './options.js';
import { Presence } from './presence.js';
import { NatsRoutes, parseRequest } from './routes.js';
import {
  fromBytes,
  isPresence,
  payload,
  Subjects,
  toBytes,
  type WirePresence,
  type WireReply,
  type WireRequest,
} from './wire.js';

/** How often the mesh looks for a change in this node's workers (to announce it), in ms. */
const WORKERS_POLL_MS = 100;

/**
 * Makes this cluster one node of a mesh over NATS: `startCluster({ contract, mesh:
 * natsMesh({ servers, node }) })`. See docs/nats.md for what holds across nodes.
 *
 * @throws `BusError` `INVALID_ARGUMENT` (synchronously) for a bad option. `startCluster`
 *   rejects with `STARTUP_FAILED` when NATS cannot be reached or JetStream is not ready within
 *   `startTimeoutMs`.
 */
export function natsMesh(options: NatsMeshOptions): MeshFactory {
  const resolved = resolveMeshOptions(options);
  return {
    node: resolved.node,
    start: (contract, report) => NatsMesh.start(contract, resolved, report),
  };
}

/** A running node of the mesh. */
export class NatsMesh implements RunningMesh {
  readonly routes: NatsRoutes;
  readonly api: MeshView;
  readonly config: NatsMeshConfig;
  private readonly subjects: Subjects;
  private readonly presence: Presence;
  private local: LocalRoutes | undefined;
  private readonly subs: Subscription[] = [];
  private readonly anySubs = new Map<string, Subscription>();
  /** Requests this node serves for others, by cancel id. */
  private readonly served = new Map<string, AbortController>();
  private readonly timers: NodeJS.Timeout[] = [];
  private workersSeen = '';
  private closing: Promise<void> | undefined;

  static async start(
    contract: Contract,
    options: ResolvedMeshOptions,
    report: (error: BusError) => void,
  ): Promise<NatsMesh> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        maxReconnectAttempts: -1,
        name: `${options.prefix}:${options.node}`,
        ...options.connection,
        servers: options.servers,
      });
    } catch (error) {
      throw new BusError(
        'STARTUP_FAILED',
        `natsMesh: cannot connect to ${options.servers.join(', ')}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    try {
      const stateHost = await KvStateHost.open(nc, contract, options, report);
      const configBucket = await stateHost.openBucket('config');
      return new NatsMesh(nc, contract, options, stateHost, configBucket, report);
    } catch (error) {
      await nc.close();
      throw toBusError(error, 'STARTUP_FAILED');
    }
  }

  private constructor(
    private readonly nc: NatsConnection,
    contract: Contract,
    private readonly options: ResolvedMeshOptions,
    readonly stateHost: KvStateHost,
    configBucket: MirroredBucket,
    private readonly report: (error: BusError) => void,
  ) {
    const hash = fingerprint(contract).hash;
    this.subjects = new Subjects(options.prefix, hash);
    this.presence = new Presence(options.node, hash, options.goneAfterMs, {
      joined: (node, mismatch) => {
        if (!mismatch) return;
        this.report(
          new BusError(
            'CONTRACT_MISMATCH',
            `node '${node}' runs a different contract than node '${options.node}' (their fingerprints differ): calls to it are refused, and events are not exchanged with it`,
            { data: { node } },
          ),
        );
      },
      gone: (node) => this.routes.nodeGone(node),
    });
    this.routes = new NatsRoutes(
      nc,
      this.subjects,
      this.presence,
      options.node,
      options.localFirst,
    );
    this.config = new NatsMeshConfig(nc, configBucket, options.prefix, options.node, this.presence);
    this.api = { nodes: () => this.presence.view(this.local?.workers() ?? []) };
  }

  /** Starts serving the other nodes with this node's hub, and announcing this node. */
  attach(local: LocalRoutes): void {
    this.local = local;
    this.stateHost.attach(local);
    const s = this.subjects;
    const node = this.options.node;
    this.subscribe(s.presence, (m) => this.onPresence(m));
    this.subscribe(s.call(node), (m) =>
      this.serve(m, (req, o) =>
        req.w === undefined
          ? Promise.reject(new BusError('PROTOCOL', 'mesh request without a worker'))
          : local.call(req.w, req.m, payload(req), o).then(payload),
      ),
    );
    this.subscribe(s.all(node), (m) =>
      this.serve(m, (req, o) => local.gather(req.m, payload(req), o).then((a) => ({ a }))),
    );
    this.subscribe(s.cancelAll, (m) => {
      const c = safeParse(m)?.c;
      if (typeof c === 'string') {
        this.served.get(c)?.abort(new BusError('ABORTED', 'the caller gave up on the call'));
      }
    });
    this.subscribe(s.events, (m) => {
      const e = safeParse(m);
      if (e === undefined || e.n === node) return;
      if (typeof e.t !== 'string' || !Number.isSafeInteger(e.s)) {
        local.report(new BusError('PROTOCOL', 'mesh event: malformed'));
        return;
      }
      local.deliver(e.t, payload(e), e.s as number);
    });
    this.announce(true);
    void this.watchStatus();
    const beat = setInterval(() => {
      this.presence.sweep();
      this.announce(false);
    }, this.options.heartbeatMs);
    const poll = setInterval(() => this.pollWorkers(), WORKERS_POLL_MS);
    beat.unref();
    poll.unref();
    this.timers.push(beat, poll);
  }

  /** The connection's events: a disconnect fails the calls in flight; a reconnect re-announces. */
  private async watchStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (this.closing !== undefined) return;
      if (status.type === 'disconnect') this.routes.connectionLost();
      else if (status.type === 'reconnect') this.announce(true);
    }
  }

  private subscribe(subject: string, callback: (m: Msg) => void, queue?: string): Subscription {
    const sub = this.nc.subscribe(subject, {
      ...(queue === undefined ? {} : { queue }),
      callback: (error, m) => {
        if (error === null) callback(m);
      },
    });
    if (queue === undefined) this.subs.push(sub);
    return sub;
  }

  private onPresence(m: Msg): void {
    const p = safeParse(m);
    if (p === undefined || !isPresence(p)) return;
    if (p.n === this.options.node) return;
    this.presence.heard(p);
    if (p.a === 1) this.announce(false);
  }

  /** Publishes this node's presence (asking the others to answer, when it joins). */
  private announce(ask: boolean): void {
    if (this.closing !== undefined || this.nc.isClosed()) return;
    const workers = this.local?.workers() ?? [];
    const body: WirePresence = {
      n: this.options.node,
      h: this.subjects.events.split('.').pop()!,
      w: workers.map((w) => [w.id, [...w.handles]]),
    };
    if (ask) body.a = 1;
    this.nc.publish(this.subjects.presence, toBytes(body));
  }

  /** A change in this node's workers: the `'any'` queue subscriptions, and a heartbeat now. */
  private pollWorkers(): void {
    const workers = this.local?.workers() ?? [];
    const seen = JSON.stringify(workers);
    if (seen === this.workersSeen) return;
    this.workersSeen = seen;
    const methods = new Set<string>();
    for (const w of workers) for (const h of w.handles) methods.add(h);
    for (const [method, sub] of this.anySubs) {
      if (!methods.has(method)) {
        sub.unsubscribe();
        this.anySubs.delete(method);
      }
    }
    const local = this.local;
    for (const method of methods) {
      if (this.anySubs.has(method) || local === undefined) continue;
      this.anySubs.set(
        method,
        this.subscribe(
          this.subjects.any(method),
          (m) => this.serve(m, (req, o) => local.call('any', req.m, payload(req), o).then(payload)),
          this.subjects.anyQueue,
        ),
      );
    }
    this.announce(false);
  }

  /** Serves one request from another node and replies, whatever happens. */
  private serve(
    m: Msg,
    run: (req: WireRequest, o: { timeoutMs: number; signal: AbortSignal }) => Promise<WireReply>,
  ): void {
    if (m.reply === undefined || m.reply === '') return;
    let req: WireRequest;
    try {
      req = parseRequest(m.data);
    } catch (error) {
      this.local?.report(toBusError(error, 'PROTOCOL'));
      this.respond(m, { e: toBusError(error, 'PROTOCOL').toJSON() });
      return;
    }
    const controller = new AbortController();
    this.served.set(req.c, controller);
    run(req, { timeoutMs: req.d, signal: controller.signal }).then(
      (reply) => {
        this.served.delete(req.c);
        this.respond(m, reply);
      },
      (error: unknown) => {
        this.served.delete(req.c);
        this.respond(m, { e: toBusError(error, 'REMOTE').toJSON() });
      },
    );
  }

  private respond(m: Msg, reply: WireReply): void {
    if (this.nc.isClosed()) return;
    let bytes = toBytes(reply);
    const max = this.nc.info?.max_payload ?? 1_048_576;
    if (bytes.length > max) {
      bytes = toBytes({
        e: new BusError(
          'PAYLOAD_TOO_LARGE',
          `the result is ${bytes.length} bytes, over the NATS server's max_payload (${max} bytes); not sent`,
        ).toJSON(),
      });
    }
    m.respond(bytes);
  }

  /** Leaves the mesh: says goodbye, settles every call, closes the stores and the connection. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closing = (async () => {
      for (const t of this.timers.splice(0)) clearInterval(t);
      this.routes.close();
      for (const c of this.served.values()) c.abort(new BusError('CLOSED', 'the mesh was closed'));
      this.served.clear();
      if (!this.nc.isClosed()) {
        const bye: WirePresence = { n: this.options.node, h: '', w: [], b: 1 };
        this.nc.publish(this.subjects.presence, toBytes(bye));
      }
      await this.stateHost
        .close()
        .catch((error: unknown) => this.report(toBusError(error, 'CLOSED')));
      for (const s of [...this.subs.splice(0), ...this.anySubs.values()]) s.unsubscribe();
      this.anySubs.clear();
      if (!this.nc.isClosed()) {
        await this.nc.flush().catch(() => {});
        await this.nc.close();
      }
    })();
    return this.closing;
  }
}

function safeParse(m: Msg): Record<string, unknown> | undefined {
  try {
    return fromBytes(m.data, 'mesh message');
  } catch {
    return undefined;
  }
}
