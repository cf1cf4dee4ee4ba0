/**
 * Topic pattern matching with 10,000 patterns (`npm run bench:patterns`): the cost of finding the
 * subscriptions one event matches, in the hub's trie (src/bus/topic-trie.ts), as the number of
 * patterns that do NOT match grows from 10 to 10,000, next to a linear scan of every pattern.
 * The trie's cost should stay flat; the scan's grows with the patterns.
 *
 * Each pattern set holds the same 8 patterns matching `orders.eu.<n>.paid` (exact, `*`, `>`),
 * plus N others that never match it (other services, exact names, `*` and `>` patterns).
 *
 * @module
 */
import { matches, TopicTrie } from '../src/bus/topic-trie.js';

const MATCHING = [
  'orders.eu.7.paid',
  'orders.eu.*.paid',
  'orders.*.*.paid',
  'orders.eu.>',
  'orders.>',
  '*.eu.7.paid',
  '>',
  '*.*.*.*',
];

/** `n` patterns that never match `orders.eu.7.paid`: a realistic mix of shapes. */
function others(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const svc = `svc${i % 500}`;
    switch (i % 5) {
      case 0:
        out.push(`${svc}.user.${i}`); // exact
        break;
      case 1:
        out.push(`${svc}.*.updated`);
        break;
      case 2:
        out.push(`${svc}.cache.>`);
        break;
      case 3:
        out.push(`orders.${i}.*.refunded`); // shares the first token
        break;
      default:
        out.push(`*.${svc}.${i}`);
    }
  }
  return out;
}

/** The best of 3 rounds: the machine is shared, the least disturbed round is the closest. */
function bench(label: string, run: () => number, minMs = 200): number {
  return Math.min(round(label, run, minMs), round(label, run, minMs), round(label, run, minMs));
}

function round(label: string, run: () => number, minMs: number): number {
  // Warm up, then time batches until minMs has passed.
  for (let i = 0; i < 2_000; i++) run();
  let ops = 0;
  let sink = 0;
  const start = performance.now();
  let now = start;
  while (now - start < minMs) {
    for (let i = 0; i < 1_000; i++) sink += run();
    ops += 1_000;
    now = performance.now();
  }
  const ns = ((now - start) * 1e6) / ops;
  if (sink < 0) console.log(label); // keep `sink` alive
  return ns;
}

const topics = Array.from({ length: 64 }, (_, i) => `orders.eu.${i % 8 === 0 ? 7 : i}.paid`);
const rows: string[] = [];
let base = 0;
for (const n of [10, 100, 1_000, 10_000]) {
  const patterns = [...MATCHING, ...others(n - MATCHING.length)];
  const trie = new TopicTrie<number>();
  for (const [i, p] of patterns.entries()) trie.add(p, i);
  let t = 0;
  let found = 0;
  const trieNs = bench(`trie ${n}`, () => {
    found = 0;
    trie.match(topics[t++ & 63]!, () => {
      found++;
    });
    return found;
  });
  let u = 0;
  const scanNs = bench(
    `scan ${n}`,
    () => {
      const topic = topics[u++ & 63]!;
      let hits = 0;
      for (const p of patterns) if (matches(p, topic)) hits++;
      return hits;
    },
    100,
  );
  if (n === 10) base = trieNs;
  rows.push(
    `| ${n.toLocaleString('en-US').padStart(6)} | ${trieNs.toFixed(0).padStart(7)} ns | ${(trieNs / base).toFixed(2)}x | ${Math.round(
      1e9 / trieNs,
    )
      .toLocaleString('en-US')
      .padStart(10)} | ${scanNs.toFixed(0).padStart(9)} ns |`,
  );
}
console.log(
  `Pattern matching: one event against N subscribed patterns (node ${process.version})\n`,
);
console.log('| patterns | trie, per event | vs 10 | trie events/s | linear scan, per event |');
console.log('| ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(r);
