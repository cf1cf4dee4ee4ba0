/**
 * The compare-and-set of the mesh's stores and locks under contention, on this machine's
 * nats-server (2.9.10, with nats-server#4320: the per-key check is not exact on R3 streams).
 * Three connections, one per server of a 3-server cluster, write the same R3 bucket at once.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MirroredBucket } from '../../src/nats/kv-bucket.js';
import { atLeast } from '../../src/nats/options.js';
import { NATS_SERVER, NatsFixture, type NatsServer } from './servers.js';

const fixture = new NatsFixture();
let cluster: NatsServer[];
let single: NatsServer;
const conns: NatsConnection[] = [];

async function open(urls: string[][], name: string, replicas: number, mode: 'stream' | 'key') {
  const buckets: MirroredBucket[] = [];
  for (const u of urls) {
    const nc = await connect({ servers: u });
    conns.push(nc);
    buckets.push(await MirroredBucket.open(nc, name, replicas, mode, Date.now() + 20_000));
  }
  return buckets;
}

/** `perWriter` increments of `key` from each bucket, `c` at a time each. */
async function increments(buckets: MirroredBucket[], key: string, perWriter: number, c: number) {
  await Promise.all(
    buckets.map(async (b) => {
      let left = perWriter;
      await Promise.all(
        Array.from({ length: c }, async () => {
          while (left-- > 0) {
            await b.write(key, (cur) => ({
              put: ((cur?.value as number | undefined) ?? 0) + 1,
              result: (r) => r,
            }));
          }
        }),
      );
    }),
  );
}

describe.skipIf(NATS_SERVER === undefined)('KV compare-and-set under contention', () => {
  beforeAll(async () => {
    cluster = await fixture.cluster(3);
    single = await fixture.single();
    await Promise.all(cluster.map((s) => s.healthy()));
  }, 60_000);
  afterAll(async () => {
    await Promise.all(conns.map((c) => c.close()));
    await fixture.close();
  }, 30_000);

  it('the server here is one the auto mode runs stream-wide (per-key CAS needs 2.10.19+)', async () => {
    const nc = await connect({ servers: cluster[0]!.url });
    conns.push(nc);
    const version = nc.info!.version;
    expect(atLeast(version, 2, 10, 19)).toBe(version >= '2.10.19' && !version.startsWith('2.9'));
    expect(atLeast('2.9.10', 2, 10, 19)).toBe(false);
    expect(atLeast('2.10.19', 2, 10, 19)).toBe(true);
    expect(atLeast('2.11.0', 2, 10, 19)).toBe(true);
    expect(atLeast('2.10.18', 2, 10, 19)).toBe(false);
  });

  it("'stream' mode on an R3 bucket: 3 × 300 concurrent increments from three servers end exact", async () => {
    const buckets = await open(
      cluster.map((s) => [s.url]),
      'contend_stream',
      3,
      'stream',
    );
    const started = performance.now();
    await increments(buckets, 'n', 300, 8);
    const ms = performance.now() - started;
    for (const b of buckets) await b.sync();
    const values = buckets.map((b) => b.live('n')?.value);
    const retries = buckets.reduce((n, b) => n + b.retries, 0);
    console.log(
      `[kv] stream mode, R3: 900 increments in ${ms.toFixed(0)} ms, ${retries} lost compare-and-sets retried`,
    );
    expect(values).toEqual([900, 900, 900]);
  }, 120_000);

  it("'stream' mode on an R3 bucket: of 3 concurrent create-if-absent, exactly one wins, 100 times", async () => {
    const buckets = await open(
      cluster.map((s) => [s.url]),
      'contend_create',
      3,
      'stream',
    );
    let doubles = 0;
    for (let i = 0; i < 100; i++) {
      const wins = await Promise.all(
        buckets.map((b, j) =>
          b.write(`k${i}`, (cur) =>
            cur === undefined ? { put: j, result: () => true } : { answer: false },
          ),
        ),
      );
      if (wins.filter(Boolean).length !== 1) doubles++;
    }
    expect(doubles).toBe(0);
  }, 120_000);

  it("'key' mode is exact where the server's per-key check is (an R1 bucket): 3 × 200 increments", async () => {
    const buckets = await open([[single.url], [single.url], [single.url]], 'contend_key', 1, 'key');
    await increments(buckets, 'n', 200, 8);
    for (const b of buckets) await b.sync();
    expect(buckets.map((b) => b.live('n')?.value)).toEqual([600, 600, 600]);
  }, 120_000);
});
