/**
 * An index of items by string prefix: which items' prefixes does a key start with? A radix tree
 * (edges labelled with strings, one node per distinct prefix and per branch point), so a lookup
 * walks at most the key's length and visits only the matching prefixes, whatever else the index
 * holds; memory grows with the number of distinct prefixes, not their total length.
 *
 * @module
 */

interface Node<T> {
  /** The edge from the parent: what this node adds to its parent's prefix (root: ''). */
  label: string;
  /** Children by the first character of their label. */
  readonly children: Map<string, Node<T>>;
  /** The items whose prefix ends exactly here. */
  items: Set<T> | undefined;
}

/** Items by prefix. The empty prefix matches every key. */
export class PrefixIndex<T> {
  /** @internal The tree's root (tests check that removals prune it). */
  readonly root: Node<T> = { label: '', children: new Map(), items: undefined };
  private count = 0;

  /** How many items the index holds. */
  get size(): number {
    return this.count;
  }

  /** Adds `item` under `prefix` (an item already there is kept once). */
  add(prefix: string, item: T): void {
    let node = this.root;
    let i = 0;
    while (i < prefix.length) {
      const child = node.children.get(prefix[i]!);
      if (child === undefined) {
        const leaf: Node<T> = { label: prefix.slice(i), children: new Map(), items: undefined };
        node.children.set(prefix[i]!, leaf);
        node = leaf;
        break;
      }
      const common = commonLength(child.label, prefix, i);
      if (common < child.label.length) {
        // Split the edge: a new node for the shared part, the old child below it.
        const mid: Node<T> = {
          label: child.label.slice(0, common),
          children: new Map(),
          items: undefined,
        };
        child.label = child.label.slice(common);
        mid.children.set(child.label[0]!, child);
        node.children.set(mid.label[0]!, mid);
        node = mid;
      } else {
        node = child;
      }
      i += common;
    }
    node.items ??= new Set();
    if (!node.items.has(item)) {
      node.items.add(item);
      this.count++;
    }
  }

  /** Removes `item` from under `prefix`; returns whether it was there. Prunes empty nodes. */
  delete(prefix: string, item: T): boolean {
    const path: Node<T>[] = [this.root];
    let node = this.root;
    let i = 0;
    while (i < prefix.length) {
      const child = node.children.get(prefix[i]!);
      if (child === undefined || !prefix.startsWith(child.label, i)) return false;
      i += child.label.length;
      node = child;
      path.push(node);
    }
    if (node.items?.delete(item) !== true) return false;
    this.count--;
    if (node.items.size === 0) node.items = undefined;
    // Prune from the bottom: drop empty leaves, merge a node with no items into its only child.
    for (let d = path.length - 1; d > 0; d--) {
      const n = path[d]!;
      const parent = path[d - 1]!;
      if (n.items !== undefined) break;
      if (n.children.size === 0) {
        parent.children.delete(n.label[0]!);
        continue;
      }
      if (n.children.size === 1) {
        const [only] = n.children.values();
        only!.label = n.label + only!.label;
        parent.children.set(only!.label[0]!, only!);
      }
      break;
    }
    return true;
  }

  /** Calls `visit` with every item whose prefix `key` starts with, shortest prefix first. */
  forEachMatch(key: string, visit: (item: T) => void): void {
    let node = this.root;
    let i = 0;
    for (;;) {
      if (node.items !== undefined) for (const item of node.items) visit(item);
      if (i >= key.length) return;
      const child = node.children.get(key[i]!);
      if (child === undefined || !key.startsWith(child.label, i)) return;
      i += child.label.length;
      node = child;
    }
  }
}

/** How many characters `label` shares with `text` from `at` on. */
function commonLength(label: string, text: string, at: number): number {
  let n = 0;
  while (n < label.length && at + n < text.length && label[n] === text[at + n]) n++;
  return n;
}
