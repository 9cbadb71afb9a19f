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

/**
 * The other order, to compare with (bench:tree prints both): every leaf (a base job) first, then
 * the farther from the root first. A ScheduleModel priority only (it is not a BullMQ one: leaves
 * rank at -Infinity).
 */
export const leavesFirst = (node: PlannedNode): number =>
  node.children.length === 0 ? Number.NEGATIVE_INFINITY : -node.level;

export interface ScheduleModel {
  /** Workers, each proving one job at a time. */
  workers: number;
  /** How long a node takes to prove (ms). */
  durationOf(node: PlannedNode): number;
  /** A node's priority: lower goes first (BullMQ's: 1 is the most urgent). */
  priorityOf(node: PlannedNode): number;
}

/**
 * The makespan (ms) of proving `plan` on `model.workers` workers with no overhead: from the moment
 * every leaf is ready to the root's proof. A node is ready once all its children are proven.
 */
export function scheduleMakespan(plan: TreePlan, model: ScheduleModel): number {
  // The root is level 0, the last level to end.
  return scheduleLevels(plan, model).get(0)!;
}

/**
 * The same schedule, level by level: when the last proof of each tree level ends (ms from the
 * start; the root's level ends at the makespan). A benchmark compares its own levels with these to
 * tell where its overhead accrues.
 */
export function scheduleLevels(plan: TreePlan, model: ScheduleModel): Map<number, number> {
  if (!Number.isInteger(model.workers) || model.workers < 1) {
    throw new RangeError(`workers must be a positive integer, got ${model.workers}`);
  }
  const byKey = new Map(plan.nodes.map((n) => [n.key, n]));
  const left = new Map(plan.nodes.map((n) => [n.key, n.children.length]));
  // Ready nodes by priority, each in the order it became ready; priorities in use, ascending.
  const ready = new Map<number, PlannedNode[]>();
  const priorities: number[] = [];
  const makeReady = (node: PlannedNode) => {
    const p = model.priorityOf(node);
    const queue = ready.get(p);
    if (queue) queue.push(node);
    else {
      ready.set(p, [node]);
      priorities.push(p);
      priorities.sort((a, b) => a - b);
    }
  };
  const mostUrgent = (): PlannedNode | undefined => {
    for (const p of priorities) {
      const node = ready.get(p)!.shift();
      if (node) return node;
    }
    return undefined;
  };
  // Leaves in the order a flow adds them: deepest level first, each level left to right.
  const leaves = plan.nodes.filter((n) => n.children.length === 0);
  leaves.sort((a, b) => b.level - a.level || a.index - b.index);
  for (const n of leaves) makeReady(n);
  // Proofs under way, at most one per worker.
  let running: { at: number; node: PlannedNode }[] = [];
  let now = 0;
  const lastEnd = new Map<number, number>();
  for (;;) {
    while (running.length < model.workers) {
      const node = mostUrgent();
      if (!node) break;
      running.push({ at: now + model.durationOf(node), node });
    }
    if (running.length === 0) break;
    now = Math.min(...running.map((r) => r.at));
    // Every proof that ends now first, then the free workers choose among all that is ready.
    const ending = running.filter((r) => r.at === now);
    running = running.filter((r) => r.at !== now);
    for (const { node } of ending) {
      lastEnd.set(node.level, now);
      if (node.key === plan.root) return lastEnd;
      const parent = byKey.get(node.parent!)!;
      const rest = left.get(parent.key)! - 1;
      left.set(parent.key, rest);
      if (rest === 0) makeReady(parent);
    }
  }
  throw new Error("the tree's root was never proven: the plan is not a tree");
}
