/** The topic trie against a naive matcher (fast-check), and the pattern grammar. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matches, patternProblem, TopicTrie } from '../../src/bus/topic-trie.js';

const token = fc.constantFrom('a', 'b', 'c', 'orders', 'eu');
const topic = fc.array(token, { minLength: 1, maxLength: 5 }).map((t) => t.join('.'));
const pattern = fc
  .tuple(fc.array(fc.oneof(token, fc.constant('*')), { minLength: 0, maxLength: 5 }), fc.boolean())
  .filter(([tokens, rest]) => tokens.length > 0 || rest)
  .map(([tokens, rest]) => [...tokens, ...(rest ? ['>'] : [])].join('.'));

/** The naive reference: NATS subject matching written out token by token, independently. */
function naive(p: string, t: string): boolean {
  const pt = p.split('.');
  const tt = t.split('.');
  if (pt[pt.length - 1] === '>') {
    const head = pt.slice(0, -1);
    return tt.length > head.length && head.every((x, i) => x === '*' || x === tt[i]);
  }
  return pt.length === tt.length && pt.every((x, i) => x === '*' || x === tt[i]);
}

describe('topic patterns (NATS subject semantics)', () => {
  it.each([
    ['cache.*', 'cache.user', true],
    ['cache.*', 'cache.user.42', false],
    ['cache.*', 'cache', false],
    ['orders.>', 'orders.eu', true],
    ['orders.>', 'orders.eu.paid', true],
    ['orders.>', 'orders', false],
    ['*.paid', 'orders.paid', true],
    ['>', 'a', true],
    ['>', 'a.b.c', true],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.b.d', false],
    ['a.b', 'a.b', true],
    ['a.b', 'a.bc', false],
  ])('%s matches %s: %s', (p, t, expected) => {
    expect(matches(p, t)).toBe(expected);
    const trie = new TopicTrie<number>();
    trie.add(p, 1);
    expect(trie.has(t)).toBe(expected);
  });

  it.each([
    ['', 'empty'],
    ['a..b', 'empty'],
    ['.a', 'empty'],
    ['a.', 'empty'],
    ['a.>.b', 'last'],
    ['>.a', 'last'],
    ['ca*', 'inside'],
    ['a.b>', 'inside'],
    ['a b', 'whitespace'],
    [`${'a.'.repeat(128)}b`, 'longer than 256'],
  ])('refuses %j (%s)', (p, why) => {
    expect(patternProblem(p)).toContain(why);
  });

  it('accepts wildcards in patterns, never in a concrete topic', () => {
    expect(patternProblem('a.*.>')).toBeUndefined();
    expect(patternProblem('a.*', true)).toContain('wildcard');
    expect(patternProblem('a.>', true)).toContain('wildcard');
    expect(patternProblem('a.b', true)).toBeUndefined();
  });
});

describe('TopicTrie', () => {
  it('finds exactly what the naive matcher finds, for any set of patterns and topic (fast-check)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(pattern, { maxLength: 40 }), topic, (patterns, t) => {
        const trie = new TopicTrie<string>();
        for (const p of patterns) trie.add(p, p);
        const found: string[] = [];
        trie.match(t, (v, p) => {
          expect(v).toBe(p);
          found.push(p);
        });
        expect(found.sort()).toEqual(patterns.filter((p) => naive(p, t)).sort());
        expect(patterns.filter((p) => matches(p, t)).sort()).toEqual(found);
      }),
      { numRuns: 2_000 },
    );
  });

  it('forgets removed patterns, prunes its branches, and keeps the others (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(pattern, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        topic,
        (patterns, removals, t) => {
          const trie = new TopicTrie<number>();
          for (const p of patterns) trie.add(p, 1);
          const kept = new Set(patterns);
          for (const r of removals) {
            const p = patterns[r % Math.max(1, patterns.length)];
            if (p === undefined) continue;
            expect(trie.remove(p, 1)).toBe(kept.delete(p));
          }
          expect(trie.size).toBe(kept.size);
          const found: string[] = [];
          trie.match(t, (_, p) => found.push(p));
          expect(found.sort()).toEqual([...kept].filter((p) => naive(p, t)).sort());
          for (const p of kept) trie.remove(p, 1);
          expect(trie.size).toBe(0);
          expect(trie.has(t)).toBe(false);
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('holds a value once per pattern, and several values per pattern', () => {
    const trie = new TopicTrie<number>();
    expect(trie.add('a.*', 1)).toBe(true);
    expect(trie.add('a.*', 1)).toBe(false);
    expect(trie.add('a.*', 2)).toBe(true);
    const seen: number[] = [];
    trie.match('a.x', (v) => seen.push(v));
    expect(seen.sort()).toEqual([1, 2]);
    expect(trie.remove('a.*', 3)).toBe(false);
    expect(trie.remove('b.*', 1)).toBe(false);
  });
});
