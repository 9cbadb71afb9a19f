import { describe, expect, it } from "vitest";
import {
  type JobType,
  jobCount,
  leftSubtreeSize,
  nodeKey,
  type PlannedNode,
  planTree,
  rootJobTypes,
  type TreePlan,
} from "./tree.ts";

// ---------------------------------------------------------------------------------------------
// An independent reference: build the wonky tree as nested objects over half-open tx ranges,
// walk it depth first, and derive every node's (level, index) by sorting on (depth, pre-order
// position). Nothing here shares code or traversal strategy with planTree's breadth-first pass.
// ---------------------------------------------------------------------------------------------

interface RefTree {
  type: JobType;
  txIndex?: number;
  kids: RefTree[];
}

/** Largest power of two strictly below n (n >= 2), via the position of n - 1's top bit. */
const pow2Below = (n: number): number => 1 << (31 - Math.clz32(n - 1));

function buildRange(lo: number, hi: number): RefTree {
  if (hi - lo === 1) return { type: "base", txIndex: lo, kids: [] };
  const split = lo + pow2Below(hi - lo);
  return { type: "merge", kids: [buildRange(lo, split), buildRange(split, hi)] };
}

function referenceTree(n: number): RefTree {
  if (n === 0) return { type: "empty_block_root", kids: [] };
  if (n === 1)
    return { type: "single_tx_block_root", kids: [{ type: "base", txIndex: 0, kids: [] }] };
  const whole = buildRange(0, n);
  return { type: "block_root", kids: whole.kids };
}

interface Expected {
  key: string;
  type: JobType;
  level: number;
  index: number;
  txIndex: number | undefined;
  parent: string | undefined;
  children: string[];
}

function referencePlan(n: number): Expected[] {
  interface Visit {
    node: RefTree;
    depth: number;
    pre: number;
    parentPre: number | undefined;
    kidPres: number[];
  }
  const visits: Visit[] = [];
  const walk = (node: RefTree, depth: number, parentPre: number | undefined): number => {
    const visit: Visit = { node, depth, pre: visits.length, parentPre, kidPres: [] };
    visits.push(visit);
    for (const kid of node.kids) visit.kidPres.push(walk(kid, depth + 1, visit.pre));
    return visit.pre;
  };
  walk(referenceTree(n), 0, undefined);

  const ordered = [...visits].sort((a, b) => a.depth - b.depth || a.pre - b.pre);
  const keyOfPre = new Map<number, string>();
  const indexOfPre = new Map<number, number>();
  const perDepth = new Map<number, number>();
  for (const v of ordered) {
    const index = perDepth.get(v.depth) ?? 0;
    perDepth.set(v.depth, index + 1);
    indexOfPre.set(v.pre, index);
    keyOfPre.set(v.pre, `${v.depth}:${index}`);
  }
  return ordered.map((v) => ({
    key: keyOfPre.get(v.pre)!,
    type: v.node.type,
    level: v.depth,
    index: indexOfPre.get(v.pre)!,
    txIndex: v.node.txIndex,
    parent: v.parentPre === undefined ? undefined : keyOfPre.get(v.parentPre),
    children: v.kidPres.map((p) => keyOfPre.get(p)!),
  }));
}

const normalize = (node: PlannedNode): Expected => ({
  key: node.key,
  type: node.type,
  level: node.level,
  index: node.index,
  txIndex: node.txIndex,
  parent: node.parent,
  children: [...node.children],
});

const byKey = (plan: TreePlan): Map<string, PlannedNode> =>
  new Map(plan.nodes.map((node) => [node.key, node]));

/** Base leaves' txIndex, read left to right by a depth-first walk over the plan's own links. */
function leavesLeftToRight(plan: TreePlan): number[] {
  const nodes = byKey(plan);
  const out: number[] = [];
  const stack = [plan.root];
  while (stack.length > 0) {
    const node = nodes.get(stack.pop()!)!;
    if (node.type === "base") out.push(node.txIndex!);
    for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]!);
  }
  return out;
}

function leafCount(nodes: Map<string, PlannedNode>, key: string): number {
  const node = nodes.get(key)!;
  if (node.children.length === 0) return node.type === "base" ? 1 : 0;
  return node.children.reduce((sum, child) => sum + leafCount(nodes, child), 0);
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const allCounts = range(65);

describe("planTree against an independent construction", () => {
  it.each(allCounts)("matches the reference node for node with %i txs", (n) => {
    const plan = planTree(n);
    const expected = referencePlan(n);
    expect(plan.txCount).toBe(n);
    expect(plan.root).toBe("0:0");
    // planTree promises breadth-first order (root first, each level left to right), which is
    // exactly the (level, index) order of the reference.
    expect(plan.nodes.map(normalize)).toEqual(expected);
  });

  it.each(allCounts)("puts txIndex 0..n-1 on the leaves left to right (%i txs)", (n) => {
    const plan = planTree(n);
    expect(leavesLeftToRight(plan)).toEqual(range(n));
  });

  it.each(allCounts)("has the job counts of the rules and agrees with jobCount (%i txs)", (n) => {
    const plan = planTree(n);
    const count = (type: JobType) => plan.nodes.filter((node) => node.type === type).length;
    expect(jobCount(n)).toBe(plan.nodes.length);
    if (n === 0) {
      expect(plan.nodes.map((node) => node.type)).toEqual(["empty_block_root"]);
    } else if (n === 1) {
      expect(plan.nodes.map((node) => node.type)).toEqual(["single_tx_block_root", "base"]);
    } else {
      expect(count("base")).toBe(n);
      expect(count("merge")).toBe(n - 2);
      expect(count("block_root")).toBe(1);
      expect(count("single_tx_block_root")).toBe(0);
      expect(count("empty_block_root")).toBe(0);
      expect(plan.nodes.length).toBe(2 * n - 1);
    }
    // Exactly one root-type job, and it is the root.
    const roots = plan.nodes.filter((node) => rootJobTypes.includes(node.type));
    expect(roots.map((node) => node.key)).toEqual([plan.root]);
  });

  it.each(allCounts)("keeps links, keys and the power-of-two split consistent (%i txs)", (n) => {
    const plan = planTree(n);
    const nodes = byKey(plan);
    expect(nodes.size).toBe(plan.nodes.length);
    for (const node of plan.nodes) {
      expect(node.key).toBe(nodeKey(node.level, node.index));
      expect(node.key).toBe(`${node.level}:${node.index}`);
      if (node.key === plan.root) expect(node.parent).toBeUndefined();
      else {
        const parent = nodes.get(node.parent!)!;
        expect(parent.children).toContain(node.key);
        expect(parent.level).toBe(node.level - 1);
      }
      for (const child of node.children) expect(nodes.get(child)!.parent).toBe(node.key);
      if (node.type === "base") {
        expect(node.children).toEqual([]);
        expect(Number.isInteger(node.txIndex)).toBe(true);
      } else {
        expect(node.txIndex).toBeUndefined();
      }
      if (node.type === "merge" || node.type === "block_root") {
        expect(node.children).toHaveLength(2);
        const total = leafCount(nodes, node.key);
        const left = leafCount(nodes, node.children[0]!);
        // Left: the largest power of two strictly below the subtree's tx count.
        expect(left).toBe(pow2Below(total));
        expect(left).toBeLessThan(total);
        expect(left * 2).toBeGreaterThanOrEqual(total);
        expect(Math.log2(left) % 1).toBe(0);
      }
    }
    // Indexes within each level are 0, 1, 2, ... with no gaps.
    const perLevel = new Map<number, number[]>();
    for (const node of plan.nodes)
      perLevel.set(node.level, [...(perLevel.get(node.level) ?? []), node.index]);
    for (const indexes of perLevel.values()) expect(indexes).toEqual(range(indexes.length));
  });
});

describe("planTree by hand", () => {
  const find = (plan: TreePlan, txIndex: number) =>
    plan.nodes.find((node) => node.type === "base" && node.txIndex === txIndex)!;

  it("with 0 txs is a single empty block root", () => {
    expect(planTree(0)).toEqual({
      txCount: 0,
      root: "0:0",
      nodes: [{ key: "0:0", type: "empty_block_root", level: 0, index: 0, children: [] }],
    });
  });

  it("with 1 tx is a single-tx block root over one base", () => {
    expect(planTree(1)).toEqual({
      txCount: 1,
      root: "0:0",
      nodes: [
        { key: "0:0", type: "single_tx_block_root", level: 0, index: 0, children: ["1:0"] },
        { key: "1:0", type: "base", level: 1, index: 0, txIndex: 0, parent: "0:0", children: [] },
      ],
    });
  });

  it("with 2 txs is a block root over two bases", () => {
    expect(planTree(2).nodes).toEqual([
      { key: "0:0", type: "block_root", level: 0, index: 0, children: ["1:0", "1:1"] },
      { key: "1:0", type: "base", level: 1, index: 0, txIndex: 0, parent: "0:0", children: [] },
      { key: "1:1", type: "base", level: 1, index: 1, txIndex: 1, parent: "0:0", children: [] },
    ]);
  });

  it("with 3 txs puts a merge of two on the left and the third base on the right", () => {
    expect(planTree(3).nodes).toEqual([
      { key: "0:0", type: "block_root", level: 0, index: 0, children: ["1:0", "1:1"] },
      { key: "1:0", type: "merge", level: 1, index: 0, parent: "0:0", children: ["2:0", "2:1"] },
      { key: "1:1", type: "base", level: 1, index: 1, txIndex: 2, parent: "0:0", children: [] },
      { key: "2:0", type: "base", level: 2, index: 0, txIndex: 0, parent: "1:0", children: [] },
      { key: "2:1", type: "base", level: 2, index: 1, txIndex: 1, parent: "1:0", children: [] },
    ]);
  });

  it("with 5 txs is 4 on the left and the fifth base at level 1, index 1", () => {
    const plan = planTree(5);
    expect(plan.nodes).toEqual([
      { key: "0:0", type: "block_root", level: 0, index: 0, children: ["1:0", "1:1"] },
      { key: "1:0", type: "merge", level: 1, index: 0, parent: "0:0", children: ["2:0", "2:1"] },
      { key: "1:1", type: "base", level: 1, index: 1, txIndex: 4, parent: "0:0", children: [] },
      { key: "2:0", type: "merge", level: 2, index: 0, parent: "1:0", children: ["3:0", "3:1"] },
      { key: "2:1", type: "merge", level: 2, index: 1, parent: "1:0", children: ["3:2", "3:3"] },
      { key: "3:0", type: "base", level: 3, index: 0, txIndex: 0, parent: "2:0", children: [] },
      { key: "3:1", type: "base", level: 3, index: 1, txIndex: 1, parent: "2:0", children: [] },
      { key: "3:2", type: "base", level: 3, index: 2, txIndex: 2, parent: "2:1", children: [] },
      { key: "3:3", type: "base", level: 3, index: 3, txIndex: 3, parent: "2:1", children: [] },
    ]);
    expect(find(plan, 4)).toMatchObject({ level: 1, index: 1 });
  });

  it("with 6 txs splits 4 + 2", () => {
    const plan = planTree(6);
    expect(plan.nodes.map((node) => `${node.key}=${node.type}${node.txIndex ?? ""}`)).toEqual([
      "0:0=block_root",
      "1:0=merge",
      "1:1=merge",
      "2:0=merge",
      "2:1=merge",
      "2:2=base4",
      "2:3=base5",
      "3:0=base0",
      "3:1=base1",
      "3:2=base2",
      "3:3=base3",
    ]);
  });

  it("with 14 txs puts the twelfth base (txIndex 11) at level 4, index 11", () => {
    const plan = planTree(14);
    // 14 = 8 + (4 + 2): txs 0..11 sit at level 4, txs 12 and 13 at level 3 after six merges.
    expect(find(plan, 11)).toMatchObject({ key: "4:11", level: 4, index: 11 });
    expect(find(plan, 0)).toMatchObject({ level: 4, index: 0 });
    expect(find(plan, 12)).toMatchObject({ level: 3, index: 6 });
    expect(find(plan, 13)).toMatchObject({ level: 3, index: 7 });
    expect(plan.nodes.filter((node) => node.level === 4)).toHaveLength(12);
    expect(plan.nodes).toHaveLength(27);
    expect(jobCount(14)).toBe(27);
  });

  it("with 16 txs is a perfect tree of 31 jobs", () => {
    const plan = planTree(16);
    expect(plan.nodes).toHaveLength(31);
    expect(jobCount(16)).toBe(31);
    const bases = plan.nodes.filter((node) => node.type === "base");
    expect(bases).toHaveLength(16);
    expect(bases.every((node) => node.level === 4 && node.index === node.txIndex)).toBe(true);
    expect(plan.nodes.filter((node) => node.type === "merge")).toHaveLength(14);
  });

  it("with 17 txs hangs the last tx directly under the root", () => {
    const plan = planTree(17);
    expect(find(plan, 16)).toMatchObject({ key: "1:1", parent: "0:0" });
    expect(find(plan, 15)).toMatchObject({ level: 5, index: 15 });
  });
});

describe("jobCount and leftSubtreeSize", () => {
  it("gives the counts of the rules", () => {
    expect(jobCount(0)).toBe(1);
    expect(jobCount(1)).toBe(2);
    expect(jobCount(2)).toBe(3);
    expect(jobCount(3)).toBe(5);
    expect(jobCount(16)).toBe(31);
    expect(jobCount(1000)).toBe(1999);
  });

  it("picks the largest power of two strictly below n", () => {
    const cases: [number, number][] = [
      [2, 1],
      [3, 2],
      [4, 2],
      [5, 4],
      [8, 4],
      [9, 8],
      [14, 8],
      [16, 8],
      [17, 16],
      [64, 32],
      [65, 64],
      [1024, 512],
      [1025, 1024],
    ];
    for (const [n, expected] of cases) expect(leftSubtreeSize(n), `n = ${n}`).toBe(expected);
  });
});

describe("planTree input validation", () => {
  it.each([-1, -2, -1000, 0.5, 1.5, 2.0000001, Number.NaN, Number.POSITIVE_INFINITY, -Infinity])(
    "throws RangeError for %s",
    (n) => {
      // The planner's own check, not a stack overflow (also a RangeError) from recursing on it.
      expect(() => planTree(n)).toThrow(RangeError);
      expect(() => planTree(n)).toThrow(/txCount must be a non-negative integer/);
    },
  );

  it("accepts integral floats", () => {
    expect(planTree(3.0).nodes).toHaveLength(5);
  });
});
