/**
 * Topic patterns with NATS subject semantics: `.` separates tokens, a token `*` matches exactly
 * one token, a last token `>` matches one or more trailing tokens. {@link checkPattern} refuses
 * what NATS refuses (empty tokens, `>` not last) and, stricter than NATS, a wildcard character
 * inside a token (`ca*`), which is almost always a typo for `ca.*`.
 *
 * {@link TopicTrie} holds patterns and the values subscribed with them, and finds the values of
 * every pattern a concrete topic matches: patterns without a wildcard sit in one map (one lookup),
 * the others in a token trie walked along the topic's tokens, so a match costs what the matching
 * branches cost, never the number of patterns that do not match.
 *
 * @module
 */

/** The token that matches exactly one token. */
export const ONE = '*';
/** The last token that matches one or more trailing tokens. */
export const REST = '>';
/** The longest topic or pattern, in characters (as long as any name on the wire). */
export const MAX_PATTERN_LENGTH = 256;

/**
 * Why `pattern` is not a valid subscription pattern, or `undefined` if it is one.
 * @param concrete - a topic to publish on (or a contract's topic name): no wildcard at all.
 */
export function patternProblem(pattern: string, concrete = false): string | undefined {
  if (typeof pattern !== 'string' || pattern.length === 0) return 'it is empty';
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return `it is longer than ${MAX_PATTERN_LENGTH} characters`;
  }
  if (/\s/.test(pattern)) return 'it contains whitespace';
  const tokens = pattern.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.length === 0) return `token ${i + 1} is empty (a leading, trailing or double '.')`;
    if (token === ONE || token === REST) {
      if (concrete) return `'${token}' is a wildcard: publish to a concrete topic`;
      if (token === REST && i !== tokens.length - 1) return `'>' must be the last token`;
      continue;
    }
    if (token.includes(ONE) || token.includes(REST)) {
      return `token '${token}' has a wildcard inside it (wildcards are whole tokens: '*' or '>')`;
    }
  }
  return undefined;
}

/** Whether `pattern` has a wildcard token (it is checked already). */
export function isWildcard(pattern: string): boolean {
  return pattern === ONE || pattern === REST || /(^|\.)[*>](\.|$)/.test(pattern);
}

/**
 * Whether `topic` matches `pattern`, token by token: the reference the trie is tested against
 * (test/unit/topic-trie.test.ts), and fine for a one-off check.
 */
export function matches(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === REST) return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== ONE && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

interface TrieNode<V> {
  /** Literal children, by token. */
  children: Map<string, TrieNode<V>> | undefined;
  /** The `*` child. */
  one: TrieNode<V> | undefined;
  /** Values of the (wildcard) pattern ending here. */
  here: Set<V> | undefined;
  /** Values of the pattern ending here with `>`. */
  rest: Set<V> | undefined;
  /** The pattern ending here, and the one ending here with `>`. */
  herePattern: string;
  restPattern: string;
}

function node<V>(): TrieNode<V> {
  return {
    children: undefined,
    one: undefined,
    here: undefined,
    rest: undefined,
    herePattern: '',
    restPattern: '',
  };
}

/**
 * Patterns, each with the values subscribed with it (a value once per pattern). Patterns must
 * have passed {@link patternProblem}.
 */
export class TopicTrie<V> {
  /** Patterns without a wildcard: the fast path. */
  private readonly exact = new Map<string, Set<V>>();
  private readonly root: TrieNode<V> = node();
  /** Wildcard patterns held in the trie (0: a match is one map lookup). */
  private wildcards = 0;

  /** How many (pattern, value) pairs are held. */
  size = 0;

  /** Adds `value` under `pattern`. Returns false if it was there already. */
  add(pattern: string, value: V): boolean {
    let set: Set<V>;
    if (!isWildcard(pattern)) {
      set = this.exact.get(pattern) ?? new Set();
      this.exact.set(pattern, set);
    } else {
      let at = this.root;
      const tokens = pattern.split('.');
      for (let i = 0; i < tokens.length; i++) {
        const token = tokens[i]!;
        if (token === REST) {
          at.rest ??= new Set();
          at.restPattern = pattern;
          break;
        }
        if (token === ONE) {
          at.one ??= node();
          at = at.one;
        } else {
          at.children ??= new Map();
          let next = at.children.get(token);
          if (next === undefined) {
            next = node();
            at.children.set(token, next);
          }
          at = next;
        }
        if (i === tokens.length - 1) {
          at.here ??= new Set();
          at.herePattern = pattern;
        }
      }
      set = tokens[tokens.length - 1] === REST ? at.rest! : at.here!;
    }
    if (set.has(value)) return false;
    set.add(value);
    this.size++;
    if (isWildcard(pattern)) this.wildcards++;
    return true;
  }

  /** Removes `value` from `pattern`. Returns false if it was not there. */
  remove(pattern: string, value: V): boolean {
    if (!isWildcard(pattern)) {
      const set = this.exact.get(pattern);
      if (set === undefined || !set.delete(value)) return false;
      if (set.size === 0) this.exact.delete(pattern);
      this.size--;
      return true;
    }
    const tokens = pattern.split('.');
    const path: Array<[TrieNode<V>, string]> = [];
    let at: TrieNode<V> | undefined = this.root;
    let last = tokens.length;
    if (tokens[last - 1] === REST) last--;
    for (let i = 0; i < last && at !== undefined; i++) {
      const token = tokens[i]!;
      path.push([at, token]);
      at = token === ONE ? at.one : at.children?.get(token);
    }
    const set = at === undefined ? undefined : last < tokens.length ? at.rest : at.here;
    if (at === undefined || set === undefined || !set.delete(value)) return false;
    if (set.size === 0) {
      if (last < tokens.length) at.rest = undefined;
      else at.here = undefined;
    }
    this.size--;
    this.wildcards--;
    // Prune the branches left empty, from the leaf up.
    for (let i = path.length - 1; i >= 0; i--) {
      const [parent, token] = path[i]!;
      const child = token === ONE ? parent.one : parent.children?.get(token);
      if (child === undefined || !isEmpty(child)) break;
      if (token === ONE) parent.one = undefined;
      else {
        parent.children!.delete(token);
        if (parent.children!.size === 0) parent.children = undefined;
      }
    }
    return true;
  }

  /**
   * Calls `visit` with the values of every pattern `topic` matches (a concrete topic), once per
   * (pattern, value); with the pattern, for callers that keep more per pattern.
   */
  match(topic: string, visit: (value: V, pattern: string) => void): void {
    const exact = this.exact.get(topic);
    if (exact !== undefined) for (const v of exact) visit(v, topic);
    if (this.wildcards === 0) return;
    walk(this.root, topic.split('.'), 0, visit);
  }

  /** Whether some pattern matches `topic`. */
  has(topic: string): boolean {
    let found = false;
    this.match(topic, () => {
      found = true;
    });
    return found;
  }
}

function isEmpty<V>(n: TrieNode<V>): boolean {
  return (
    n.children === undefined && n.one === undefined && n.here === undefined && n.rest === undefined
  );
}

function walk<V>(
  at: TrieNode<V>,
  tokens: string[],
  i: number,
  visit: (value: V, pattern: string) => void,
): void {
  if (at.rest !== undefined && i < tokens.length) {
    for (const v of at.rest) visit(v, at.restPattern);
  }
  if (i === tokens.length) {
    if (at.here !== undefined) for (const v of at.here) visit(v, at.herePattern);
    return;
  }
  const child = at.children?.get(tokens[i]!);
  if (child !== undefined) walk(child, tokens, i + 1, visit);
  if (at.one !== undefined) walk(at.one, tokens, i + 1, visit);
}
