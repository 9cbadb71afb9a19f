// Proof-tree planning: Aztec's unbalanced ("wonky") block tree. For n >= 2 transactions the
// block root's left child is the largest power-of-two subtree strictly smaller than n and the
// rest is planned the same way on the right; leaves are base proofs, inner nodes merges.
// level counts from the root (0); index is the node's position within its level, left to right.

export type JobType = "base" | "merge" | "block_root" | "single_tx_block_root" | "empty_block_root";

export const jobTypes: readonly JobType[] = [
  "base",
  "merge",
  "block_root",
  "single_tx_block_root",
  "empty_block_root",
];

export const rootJobTypes: readonly JobType[] = [
  "block_root",
  "single_tx_block_root",
  "empty_block_root",
];

export interface PlannedNode {
  /** "<level>:<index>", unique within the block */
  key: string;
  type: JobType;
  level: number;
  index: number;
  /** For base nodes, the position of the transaction in the block. */
  txIndex?: number;
  parent?: string;
  children: string[];
}

export interface TreePlan {
  txCount: number;
  root: string;
  /** Nodes in breadth-first order: root first, each level left to right. */
  nodes: PlannedNode[];
}

export const nodeKey = (level: number, index: number): string => `${level}:${index}`;

/** Largest power of two strictly below n (n >= 2). */
export function leftSubtreeSize(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}

interface Shape {
  type: JobType;
  txIndex?: number;
  children: Shape[];
}

function shape(first: number, count: number): Shape {
  if (count === 1) return { type: "base", txIndex: first, children: [] };
  const left = leftSubtreeSize(count);
  return {
    type: "merge",
    children: [shape(first, left), shape(first + left, count - left)],
  };
}

function assertTxCount(txCount: number): void {
  if (!Number.isInteger(txCount) || txCount < 0) {
    throw new RangeError(`txCount must be a non-negative integer, got ${txCount}`);
  }
}

/** The type of a block's root job, which only its transaction count decides. */
export function rootJobType(txCount: number): JobType {
  assertTxCount(txCount);
  if (txCount === 0) return "empty_block_root";
  return txCount === 1 ? "single_tx_block_root" : "block_root";
}

export function planTree(txCount: number): TreePlan {
  assertTxCount(txCount);
  const type = rootJobType(txCount);
  let root: Shape;
  if (txCount === 0) root = { type, children: [] };
  else if (txCount === 1) root = { type, children: [{ type: "base", txIndex: 0, children: [] }] };
  else root = { ...shape(0, txCount), type };

  const nodes: PlannedNode[] = [];
  let level: { shape: Shape; parent?: string }[] = [{ shape: root }];
  for (let depth = 0; level.length > 0; depth++) {
    const next: { shape: Shape; parent?: string }[] = [];
    const keys = level.map((_, i) => nodeKey(depth, i));
    let childIndex = 0;
    level.forEach((entry, i) => {
      const key = keys[i]!;
      const children = entry.shape.children.map(() => nodeKey(depth + 1, childIndex++));
      nodes.push({
        key,
        type: entry.shape.type,
        level: depth,
        index: i,
        ...(entry.shape.txIndex !== undefined ? { txIndex: entry.shape.txIndex } : {}),
        ...(entry.parent !== undefined ? { parent: entry.parent } : {}),
        children,
      });
      for (const child of entry.shape.children) next.push({ shape: child, parent: key });
    });
    level = next;
  }
  return { txCount, root: nodeKey(0, 0), nodes };
}

/** Jobs a block of n transactions needs: 2n - 1 for n >= 2, 2 for n = 1, 1 for n = 0. */
export function jobCount(txCount: number): number {
  assertTxCount(txCount);
  if (txCount === 0) return 1;
  if (txCount === 1) return 2;
  return 2 * txCount - 1;
}
