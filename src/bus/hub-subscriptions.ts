/**
 * Which worker subscribes to what, in the primary: the patterns each worker announced (`sub`
 * frames), held in one {@link TopicTrie}, so an event is forwarded only to the workers with a
 * matching subscription, at a cost that does not grow with the subscriptions that do not match.
 * What a worker announces is checked where it is received: a pattern that is invalid, or past
 * {@link MAX_PATTERNS_PER_PROCESS}, is refused and reported, never held.
 *
 * @module
 */
import { BusError } from '../errors.js';
import type { SubscriptionsFrame } from '../protocol/envelope.js';
import { MAX_PATTERNS_PER_PROCESS } from './pubsub.js';
import { patternProblem, TopicTrie } from './topic-trie.js';

/** The system method a worker calls to know the primary has its subscriptions (`sub.ready`). */
export const SUBSCRIPTIONS_SYNC = '$bus.subscribed';

/** The subscriptions of every worker, as they announced them. */
export class HubSubscriptions {
  private readonly trie = new TopicTrie<number>();
  private readonly byWorker = new Map<number, Set<string>>();

  /** @param report - where refusals go (the primary's `error` event). */
  constructor(private readonly report: (error: BusError) => void) {}

  /** Applies worker `id`'s announcement: patterns added (`a`), then removed (`r`). */
  update(id: number, frame: SubscriptionsFrame): void {
    let mine = this.byWorker.get(id);
    let over = 0;
    for (const pattern of frame.a ?? []) {
      const problem = patternProblem(pattern);
      if (problem !== undefined) {
        this.report(
          new BusError('PROTOCOL', `worker ${id} subscribed to '${pattern}': ${problem}; ignored`),
        );
        continue;
      }
      mine ??= new Set();
      if (mine.has(pattern)) continue;
      if (mine.size >= MAX_PATTERNS_PER_PROCESS) {
        over++;
        continue;
      }
      mine.add(pattern);
      this.trie.add(pattern, id);
    }
    if (over > 0) {
      this.report(
        new BusError(
          'LIMIT_EXCEEDED',
          `worker ${id} subscribed to ${over} patterns past its ${MAX_PATTERNS_PER_PROCESS}; they were ignored`,
          { data: { limit: 'patternsPerProcess', value: MAX_PATTERNS_PER_PROCESS } },
        ),
      );
    }
    if (mine !== undefined && mine.size > 0) this.byWorker.set(id, mine);
    for (const pattern of frame.r ?? []) {
      if (mine?.delete(pattern) === true) this.trie.remove(pattern, id);
    }
    if (mine?.size === 0) this.byWorker.delete(id);
  }

  /** Forgets every subscription of worker `id` (its bus is gone, or a new one starts). */
  removeWorker(id: number): void {
    const mine = this.byWorker.get(id);
    if (mine === undefined) return;
    this.byWorker.delete(id);
    for (const pattern of mine) this.trie.remove(pattern, id);
  }

  /** Calls `visit` once with each worker that subscribes to a pattern `topic` matches. */
  subscribers(topic: string, visit: (id: number) => void): void {
    let seen: Set<number> | undefined;
    let first: number | undefined;
    this.trie.match(topic, (id) => {
      if (first === undefined) {
        first = id;
        visit(id);
        return;
      }
      if (id === first) return;
      seen ??= new Set([first]);
      if (seen.has(id)) return;
      seen.add(id);
      visit(id);
    });
  }

  /** @internal The patterns worker `id` subscribes to, for tests. */
  patternsOf(id: number): ReadonlySet<string> {
    return this.byWorker.get(id) ?? new Set();
  }
}
