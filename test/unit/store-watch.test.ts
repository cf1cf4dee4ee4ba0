/**
 * The watch table's index and bound: each change reaches exactly the watches that match (the
 * index agrees with a scan of every watch), a write costs the same whatever other watches exist,
 * and each process has at most `maxWatchesPerProcess` watches.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Origin } from '../../src/core/types.js';
import { type BusError, defineContract } from '../../src/index.js';
import { StoreHost } from '../../src/state/host.js';
import type { ChangeMessage } from '../../src/state/protocol.js';
import {
  DEFAULT_MAX_WATCHES_PER_PROCESS,
  matches,
  type WatchReg,
  WatchTable,
} from '../../src/state/watches.js';
import { PrefixIndex } from '../../src/util/prefix-index.js';
import { forgeRequest, rawChannel, rejection, storesPerTest, until } from './helpers.js';

const contract = defineContract({ stores: { a: z.number(), b: z.number() } });

const start = storesPerTest(contract);

/** A watch table whose sends to workers are recorded (the primary's own go to its local sink). */
function recordingTable(max?: number) {
  const sent: Array<{ origin: Origin; message: ChangeMessage }> = [];
  const table = new WatchTable((origin, _topic, message) => {
    sent.push({ origin, message });
    return true;
  }, max);
  return { table, sent };
}

describe('watch index', () => {
  it('delivers each change to exactly the watches that match, as a scan of every watch would (keys, prefixes, every key, overlaps, removals)', () => {
    // Few letters, so keys and prefixes overlap often.
    const text = fc
      .array(fc.constantFrom('a', 'b', ':'), { maxLength: 5 })
      .map((chars) => chars.join(''));
    const command = fc.oneof(
      fc.record({
        add: fc.constant(true),
        origin: fc.constantFrom<Origin>(1, 2, 3),
        store: fc.constantFrom('a', 'b'),
        kind: fc.constantFrom('key', 'prefix', 'all'),
        text,
      }),
      fc.record({ remove: fc.nat({ max: 40 }) }),
      fc.record({ drop: fc.constantFrom<Origin>(1, 2, 3) }),
      fc.record({ change: text.filter((k) => k.length > 0), store: fc.constantFrom('a', 'b') }),
    );
    fc.assert(
      fc.property(fc.array(command, { maxLength: 60 }), (commands) => {
        const { table, sent } = recordingTable();
        const live: WatchReg[] = [];
        let nextId = 1;
        for (const c of commands) {
          if ('add' in c) {
            const reg: WatchReg = {
              origin: c.origin,
              id: nextId++,
              store: c.store,
              key: c.kind === 'key' && c.text.length > 0 ? c.text : undefined,
              prefix: c.kind === 'prefix' ? c.text : undefined,
            };
            table.add(reg);
            live.push(reg);
          } else if ('remove' in c) {
            const reg = live[c.remove % Math.max(1, live.length)];
            if (reg === undefined) continue;
            table.remove(reg.origin, reg.id);
            live.splice(live.indexOf(reg), 1);
          } else if ('drop' in c) {
            table.dropOrigin(c.drop);
            for (const reg of live.filter((r) => r.origin === c.drop)) {
              live.splice(live.indexOf(reg), 1);
            }
          } else {
            sent.length = 0;
            table.changed(c.store, c.change, 'delete', undefined, 1);
            const got = new Map(sent.map((s) => [s.origin, s.message.w]));
            const want = new Map<Origin, number[]>();
            for (const reg of live) {
              if (reg.store !== c.store || !matches(reg, c.change)) continue;
              want.set(reg.origin, [...(want.get(reg.origin) ?? []), reg.id]);
            }
            expect(got).toEqual(want);
          }
          expect(table.stats().watches).toBe(live.length);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('prunes its prefix tree: after every watch is removed, nothing is left of it', () => {
    const index = new PrefixIndex<number>();
    const prefixes = ['', 'a', 'ab', 'abc', 'abd', 'b', 'ba', 'abc', 'user:1:', 'user:12:'];
    for (const [i, p] of prefixes.entries()) index.add(p, i);
    const seen: number[] = [];
    index.forEachMatch('abcd', (i) => seen.push(i));
    expect(seen).toEqual([0, 1, 2, 3, 7]);
    for (const [i, p] of prefixes.entries()) expect(index.delete(p, i)).toBe(true);
    expect(index.delete('a', 1)).toBe(false);
    expect(index.size).toBe(0);
    const root = index.root;
    expect(root.children.size).toBe(0);
    expect(root.items).toBeUndefined();
  });

  it('a write costs about the same with 200,000 non-matching watches on its store as with none (regression: 20x slower)', async () => {
    const { primary, host } = await start(1, { maxWatchesPerProcess: 250_000 });
    // Registered straight into the host's table (200,000 watch calls would take seconds), the
    // way the primary's watch handler registers them: keys and prefixes that share the written
    // keys' beginning, in the store that is written.
    const table = host.watches;
    for (let i = 0; i < 100_000; i++) {
      table.add({ origin: 1, id: 2 * i + 1, store: 'b', key: `user:${i}`, prefix: undefined });
      table.add({ origin: 1, id: 2 * i + 2, store: 'b', key: undefined, prefix: `user:${i}:` });
    }
    expect(host.stats().watches).toBe(200_000);
    const writes = async (store: 'a' | 'b', n: number) => {
      const t0 = performance.now();
      for (let j = 0; j < n; j++) await primary.store(store).set(`user:x${j % 50}`, j);
      return performance.now() - t0;
    };
    await writes('a', 2_000); // warm-up
    await writes('b', 2_000);
    // Interleaved rounds, so load on the machine weighs on both sides alike; the fastest round
    // of each side, so a garbage collection or a busy moment of the machine does not decide.
    const none: number[] = [];
    const many: number[] = [];
    for (let round = 0; round < 25; round++) {
      if (round % 2 === 0) {
        none.push(await writes('a', 1_000));
        many.push(await writes('b', 1_000));
      } else {
        many.push(await writes('b', 1_000));
        none.push(await writes('a', 1_000));
      }
    }
    const ratio = Math.min(...many) / Math.min(...none);
    console.info(
      `write time with 200,000 non-matching watches / with none: ${ratio.toFixed(2)}x (fastest of 25 rounds of 1,000 writes: ${Math.min(...many).toFixed(1)} vs ${Math.min(...none).toFixed(1)} µs per write)`,
    );
    expect(ratio).toBeLessThan(3);
    table.dropOrigin(1);
    expect(host.stats().watches).toBe(0);
  }, 60_000);
});

describe('watch bound (maxWatchesPerProcess)', () => {
  it('refuses a watch past maxWatchesPerProcess with LIMIT_EXCEEDED naming the limit, registers nothing; stopping one makes room; other processes have their own count', async () => {
    const { primary, workers, host } = await start(2, { maxWatchesPerProcess: 3 });
    const errors: BusError[] = [];
    workers[0]!.on('error', (e) => errors.push(e));
    const hits = workers[0]!.store('a');
    const seen: number[] = [];
    const watches = [0, 1, 2].map((i) =>
      hits.watch({ key: `k${i}` }, (c) => seen.push(c.revision)),
    );
    await Promise.all(watches.map((w) => w.ready));
    const over = hits.watch({ prefix: 'k' }, () => seen.push(-1));
    const error = await rejection(over.ready);
    expect(error.code).toBe('LIMIT_EXCEEDED');
    expect(error.data).toEqual({ limit: 'maxWatchesPerProcess', value: 3 });
    expect(error.message).toContain('maxWatchesPerProcess');
    expect(errors.map((e) => e.code)).toEqual(['LIMIT_EXCEEDED']); // also on the error event
    expect(host.stats().watches).toBe(3);
    // Other processes are not limited by worker 1's watches.
    const others = [workers[1]!, primary].map((bus) => bus.store('a').watch(() => {}));
    await Promise.all(others.map((w) => w.ready));
    // The refused watch never delivers; stopping a watch makes room for a new one.
    await hits.set('k0', 1);
    watches[0]!();
    await until(() => host.stats().watches === 4);
    const again = hits.watch({ key: 'k9' }, () => {});
    await again.ready;
    expect(seen).toEqual([1]);
    for (const stop of [...watches, again, ...others]) stop();
    await until(() => host.stats().watches === 0);
  });

  it('the host counts, not the client: forged watch frames past the bound are refused with LIMIT_EXCEEDED', async () => {
    const h = await start(2, { maxWatchesPerProcess: 5 });
    const raw = rawChannel(h.pairs[1]!);
    const codes: string[] = [];
    for (let w = 1_000; w < 1_007; w++) {
      const answer = await forgeRequest(raw, '$state.watch', { s: 'b', w, p: 'x' });
      codes.push(answer.ok ? 'ok' : answer.error.code);
    }
    expect(codes).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'LIMIT_EXCEEDED', 'LIMIT_EXCEEDED']);
    expect(h.host.stats().watches).toBe(5);
    // A prefix longer than any key can match nothing: refused, not stored.
    const long = await forgeRequest(raw, '$state.watch', {
      s: 'b',
      w: 2_000,
      p: 'x'.repeat(1_025),
    });
    expect(long.ok ? 'ok' : long.error.code).toBe('INVALID_ARGUMENT');
  });

  it('defaults to 10,000 watches per process, and refuses a bad maxWatchesPerProcess', async () => {
    expect(DEFAULT_MAX_WATCHES_PER_PROCESS).toBe(10_000);
    const { table } = recordingTable();
    const reg = (id: number): WatchReg => ({
      origin: 1,
      id,
      store: 'a',
      key: undefined,
      prefix: `p${id}`,
    });
    for (let id = 1; id <= 10_000; id++) table.add(reg(id));
    expect(() => table.add(reg(10_001))).toThrow(
      expect.objectContaining({
        code: 'LIMIT_EXCEEDED',
        data: { limit: 'maxWatchesPerProcess', value: 10_000 },
      }),
    );
    table.add({ ...reg(1), origin: 2 }); // another process
    expect(table.stats().watches).toBe(10_001);
    const { primary } = await start(1);
    for (const bad of [0, -1, 1.5, Number.NaN, '10'] as unknown as number[]) {
      const error = await rejection(StoreHost.open(primary, { maxWatchesPerProcess: bad }));
      expect(error.code).toBe('INVALID_ARGUMENT');
    }
    // The client refuses a prefix longer than any key too.
    expect(() => primary.store('a').watch({ prefix: 'x'.repeat(1_025) }, () => {})).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});
