/**
 * Allocations and CPU per call, in one process: a primary bus and a worker bus over the in-memory
 * pair (a JSON round trip per message, as the IPC channel makes), pipelined echo calls of object
 * payloads. Bytes allocated per call come from the heap's growth over a loop that no GC
 * interrupts (a large young generation; the GCs seen are reported, by PerformanceObserver), so
 * run it with a large semi-space:
 *
 *   node --expose-gc --max-semi-space-size=256 --import tsx bench/alloc.ts [bytes] [calls]
 *
 * Every figure covers both sides and the in-memory link's JSON: for A/B of a change, not a
 * comparison with the real channel.
 *
 * @module
 */
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { workerBus } from '../src/connect.js';
import { primaryBus } from '../src/primary-bus.js';
import { StoreHost } from '../src/state/host.js';
import { memoryPair } from '../src/transport/memory.js';
import { contract } from './contract.js';
import { checkEcho, echoMaker } from './payload.js';
import type { Payload } from './schemas.js';
import { pipelined } from './stats.js';

const bytes = Number(process.argv[2] ?? 1024);
const calls = Number(process.argv[3] ?? 20_000);
const mode = process.argv[4] ?? 'call';

const count = mode === 'callAll' ? 8 : 1;
let ready!: () => void;
let readyCount = 0;
const connected = new Promise<void>((r) => (ready = r));
const primary = primaryBus(contract, {}, { connected: () => ++readyCount === count && ready() });
const workers = Array.from({ length: count }, (_, i) => {
  const pair = memoryPair();
  primary.attachLink(i + 1, pair.a);
  const w = workerBus(contract, pair.b, i + 1, {}, () => {});
  w.handle('echo', (p) => p);
  return w;
});
const worker = workers[0]!;
await connected;
primary.release();
const host = await StoreHost.open(primary);
await new Promise((r) => setImmediate(r));

const make = echoMaker(bytes);
let received = 0;
worker.subscribe('tick', () => {
  received++;
});
/** publish mode: one call = 64 events published, resolved once the worker has them all. */
const publish64 = async () => {
  const want = received + 64;
  for (let i = 0; i < 64; i++) primary.publish('tick', { n: i, s: 'x'.repeat(32) });
  while (received < want) await new Promise((r) => setImmediate(r));
};
const call =
  mode === 'callAll'
    ? async (i: number) => {
        const sent = make(i) as Payload;
        for (const r of await primary.callAll('echo', sent)) {
          if (r.status === 'rejected') throw r.error;
          checkEcho(sent, r.value);
        }
      }
    : mode === 'publish'
      ? publish64
      : mode === 'incr'
        ? async () => {
            await worker.store('counter').increment('k', 1);
          }
        : async (i: number) => {
            const sent = make(i);
            checkEcho(sent, await primary.call(1, 'echo', sent as never));
          };

let gcs = 0;
let gcMs = 0;
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcs++;
    gcMs += e.duration;
  }
});
observer.observe({ entryTypes: ['gc'] });

const lanes = mode === 'publish' ? 1 : mode === 'callAll' ? 32 : 256;
await pipelined(calls / 4, lanes, call);
globalThis.gc?.();
await new Promise((r) => setImmediate(r));
gcs = 0;
gcMs = 0;
const h0 = v8.getHeapStatistics().used_heap_size;
const c0 = process.cpuUsage();
await pipelined(calls, lanes, call);
const c = process.cpuUsage(c0);
const h1 = v8.getHeapStatistics().used_heap_size;
await new Promise((r) => setImmediate(r));
observer.disconnect();
console.log(
  `${mode} ${bytes} B x ${calls}: CPU ${((c.user + c.system) / calls).toFixed(2)} µs/call, heap growth ${((h1 - h0) / calls).toFixed(0)} B/call, ${gcs} GCs (${gcMs.toFixed(1)} ms)${gcs > 0 ? ' (a GC ran: the growth undercounts; raise --max-semi-space-size or lower calls)' : ''}`,
);
await host.close();
for (const w of workers) await w.close();
await primary.close();
