// What a proof tree's makespan would be with no overhead at all: list scheduling as the relay
// does it (each free worker takes the most urgent ready job; equally urgent ones in the order
// they became ready, as BullMQ's prioritized set hands them out), with every lease, result and
// wake-up taking no time. No real deployment reaches it; a benchmark measures its overhead
// against it. The scheduling rule alone can cost time: nearer-the-root-first lets merges take
// workers from the last rounds of base jobs, which are on the way to the root too.
import type { PlannedNode, TreePlan } from "./tree.ts";

/**
 * The relay's rule within a block: nearer the root first. A node's BullMQ priority is its level
 * + 1 (1 = most urgent), so a merge made ready goes before the base jobs still waiting.
 */
export const nodePriority = (node: PlannedNode): number => node.level + 1;

export interface ScheduleModel {
  /** Workers, each proving one job at a time. */
  workers: number;
  /** How long a node takes to prove (ms). */
  durationOf(node: PlannedNode): number;
  /** A node's priority: lower goes first (BullMQ's: 1 is the most urgent). */
  priorityOf(node: PlannedNode): number;
}

/** A min-heap ordered by `before`. */
class Heap<T> {
  private readonly items: T[] = [];
  constructor(private readonly before: (a: T, b: T) => boolean) {}
  get size(): number {
    return this.items.length;
  }
  peek(): T | undefined {
    return this.items[0];
  }
  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!this.before(a[i]!, a[up]!)) break;
      [a[i], a[up]] = [a[up]!, a[i]!];
      i = up;
    }
  }
  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.before(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * The makespan (ms) of proving `plan` on `model.workers` workers with no overhead: from the moment
 * every leaf is ready to the root's proof. A node is ready once all its children are proven.
 */
export function scheduleMakespan(plan: TreePlan, model: ScheduleModel): number {
  if (!Number.isInteger(model.workers) || model.workers < 1) {
    throw new RangeError(`workers must be a positive integer, got ${model.workers}`);
  }
  const byKey = new Map(plan.nodes.map((n) => [n.key, n]));
  const left = new Map(plan.nodes.map((n) => [n.key, n.children.length]));
  let seq = 0;
  type Ready = { node: PlannedNode; priority: number; seq: number };
  const ready = new Heap<Ready>((a, b) =>
    a.priority !== b.priority ? a.priority < b.priority : a.seq < b.seq,
  );
  const makeReady = (node: PlannedNode) =>
    ready.push({ node, priority: model.priorityOf(node), seq: seq++ });
  // Leaves in the order they are added (the plan's, deepest level first as a flow adds them).
  const leaves = plan.nodes.filter((n) => n.children.length === 0);
  leaves.sort((a, b) => b.level - a.level || a.index - b.index);
  for (const n of leaves) makeReady(n);
  const running = new Heap<{ at: number; node: PlannedNode }>((a, b) => a.at < b.at);
  let free = model.workers;
  let now = 0;
  for (;;) {
    while (free > 0 && ready.size > 0) {
      const { node } = ready.pop()!;
      running.push({ at: now + model.durationOf(node), node });
      free--;
    }
    const next = running.peek();
    if (!next) break;
    now = next.at;
    // Every proof that ends now first, then the free workers choose among all that is ready.
    while (running.size > 0 && running.peek()!.at === now) {
      const { node } = running.pop()!;
      free++;
      if (node.key === plan.root) return now;
      const parent = byKey.get(node.parent!)!;
      const rest = left.get(parent.key)! - 1;
      left.set(parent.key, rest);
      if (rest === 0) makeReady(parent);
    }
  }
  throw new Error("the tree's root was never proven: the plan is not a tree");
}
