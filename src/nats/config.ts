/**
 * The config versions of a mesh: one KV bucket (`<prefix>_config`, key `current`: `{ version,
 * value }`), written by compare-and-set so versions are numbered once for every node; an update
 * is sent to every other node as a NATS request and answered with its workers'
 * acknowledgements; a node that missed it (partitioned) takes it from its KV watch.
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node';
import superjson from 'superjson';
import type { MeshConfig, MeshConfigAck } from '../core/mesh.js';
import { BusError, type BusErrorJSON } from '../errors.js';
import type { MirroredBucket } from './kv-bucket.js';
import type { Presence } from './presence.js';

/** Extra time a node gets to answer an update, beyond the ack timeout of its workers, in ms. */
const SPREAD_TIMEOUT_MS = 15_000;
const KEY = 'current';

interface Held {
  readonly version: number;
  readonly value: unknown;
}

interface WireAck {
  workerId: number;
  slot: number;
  status: 'accepted' | 'refused' | 'failed';
  error?: BusErrorJSON;
  node?: string;
}

/** The mesh's config versions, for one node. */
export class NatsMeshConfig implements MeshConfig {
  private unsubscribe: Array<() => void> = [];
  /** Versions this node wrote: its own update sends them, not its watch. */
  private readonly own = new Set<number>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: MirroredBucket,
    private readonly prefix: string,
    private readonly node: string,
    private readonly presence: Presence,
  ) {}

  current(): Held | undefined {
    return this.bucket.live(KEY)?.value as Held | undefined;
  }

  claim(value: unknown, ifAbsent = false): Promise<number> {
    return this.bucket.write<number>(KEY, (cur) => {
      const held = cur?.value as Held | undefined;
      if (ifAbsent && held !== undefined) return { answer: held.version };
      const version = (held?.version ?? 0) + 1;
      this.own.add(version);
      return { put: { version, value }, result: () => version };
    });
  }

  async spread(version: number, value: unknown): Promise<MeshConfigAck[]> {
    const body = new TextEncoder().encode(superjson.stringify({ version, value }));
    const per = await Promise.all(
      this.presence.live().map(async (node): Promise<MeshConfigAck[]> => {
        try {
          const m = await this.nc.request(`${this.prefix}.config.${node}`, body, {
            timeout: SPREAD_TIMEOUT_MS,
          });
          const acks = JSON.parse(new TextDecoder().decode(m.data)) as WireAck[];
          return acks.map((a) => ({
            workerId: a.workerId,
            slot: a.slot,
            status: a.status,
            node,
            ...(a.error === undefined ? {} : { error: BusError.fromJSON(a.error) }),
          }));
        } catch (cause) {
          const error = new BusError(
            'TARGET_EXITED',
            `config version ${version}: node '${node}' did not answer (${(cause as Error).message})`,
            { cause },
          );
          return this.presence
            .workersOf(node)
            .map((workerId) => ({ workerId, slot: -1, status: 'failed' as const, error, node }));
        }
      }),
    );
    return per.flat();
  }

  serve(apply: (version: number, value: unknown) => Promise<MeshConfigAck[]>): void {
    const sub = this.nc.subscribe(`${this.prefix}.config.${this.node}`, {
      callback: (error, m) => {
        if (error !== null) return;
        let held: Held;
        try {
          held = superjson.parse(new TextDecoder().decode(m.data));
        } catch {
          return;
        }
        void apply(held.version, held.value).then(
          (acks) => {
            const wire: WireAck[] = acks.map((a) => ({
              workerId: a.workerId,
              slot: a.slot,
              status: a.status,
              ...(a.error === undefined ? {} : { error: a.error.toJSON() }),
            }));
            if (!this.nc.isClosed()) m.respond(new TextEncoder().encode(JSON.stringify(wire)));
          },
          () => {
            if (!this.nc.isClosed()) m.respond(new TextEncoder().encode('[]'));
          },
        );
      },
    });
    this.unsubscribe.push(() => sub.unsubscribe());
    // A version this node missed (it was away when it was sent) comes from the KV watch.
    this.unsubscribe.push(
      this.bucket.onChange((change) => {
        const held = change.entry.value as Held | undefined;
        if (change.key !== KEY || held === undefined || this.own.has(held.version)) return;
        void apply(held.version, held.value).catch(() => {});
      }),
    );
  }

  close(): void {
    for (const u of this.unsubscribe.splice(0)) u();
    this.bucket.close();
  }
}
