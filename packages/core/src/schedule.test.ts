import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { leavesFirst, nodePriority, scheduleLevels, scheduleMakespan } from "./schedule.ts";
import { type PlannedNode, planTree } from "./tree.ts";

const timed = (base: number, merge: number, root: number) => (n: PlannedNode) =>
  n.type === "base" ? base : n.type === "merge" ? merge : root;
// The relay's own rule, nearer the root first; and its opposite.
const nearerTheRoot = nodePriority;
const deeperFirst = (n: PlannedNode) => -n.level;

describe("scheduleMakespan", () => {
  it("on one worker is the sum of every proving time", () => {
    const plan = planTree(13);
    const durationOf = timed(7, 3, 11);
    const total = plan.nodes.reduce((s, n) => s + durationOf(n), 0);
    expect(scheduleMakespan(plan, { workers: 1, durationOf, priorityOf: nearerTheRoot })).toBe(
      total,
    );
  });

  it("with a worker for every leaf is the critical path, whatever the priority", () => {
    // 6 txs: the left subtree of 4 is one level deeper than the right one of 2.
    const plan = planTree(6);
    for (const priorityOf of [nearerTheRoot, deeperFirst]) {
      expect(scheduleMakespan(plan, { workers: 6, durationOf: timed(10, 1, 5), priorityOf })).toBe(
        10 + 1 + 1 + 5,
      );
    }
  });

  it("lets a ready merge go before a base when nearer the root is first (worked by hand)", () => {
    // 4 txs on 2 workers, base 10, merge 1, root 5. Nearer the root first: b0 b1 at 0; at 10 the
    // first merge (10-11) and b2 (10-20); at 11 b3 (11-21); the second merge 21-22; root 22-27.
    // Deeper first: b0 b1, then b2 b3 (10-20), both merges 20-21, root 21-26.
    const plan = planTree(4);
    const durationOf = timed(10, 1, 5);
    expect(scheduleMakespan(plan, { workers: 2, durationOf, priorityOf: nearerTheRoot })).toBe(27);
    expect(scheduleMakespan(plan, { workers: 2, durationOf, priorityOf: deeperFirst })).toBe(26);
  });

  it("puts every base job first in the other order, even before deeper merges (worked by hand)", () => {
    // 5 txs on 2 workers, base 10, merge 1, root 5: the root's children are a merge over two
    // merges of two bases each (levels 1-3) and a base at level 1.
    // Leaves first: bases 3:0 3:1 (0-10), 3:2 3:3 (10-20), then the base 1:1 (20-30) beside the
    // merges 2:0 (20-21), 2:1 (21-22), 1:0 (22-23); root 30-35.
    // Deeper first: 3:0 3:1, 3:2 3:3, both level-2 merges 20-21, then at level 1 the base (21-31),
    // ready before the merge 1:0 (21-22); root 31-36. Nearer the root first: 37.
    const plan = planTree(5);
    const durationOf = timed(10, 1, 5);
    const at = (priorityOf: (n: PlannedNode) => number) =>
      scheduleMakespan(plan, { workers: 2, durationOf, priorityOf });
    expect(at(leavesFirst)).toBe(35);
    expect(at(deeperFirst)).toBe(36);
    expect(at(nearerTheRoot)).toBe(37);
  });

  it("tells when each level's last proof ends, the root's at the makespan (worked by hand)", () => {
    // The 5-tx tree above: leaves first, the bases of level 3 end at 20, the merges of level 2 at
    // 22, level 1's base (20-30) after its merge (22-23), the root at 35. Deeper first, level 1's
    // base runs 21-31 and the root 31-36.
    const plan = planTree(5);
    const durationOf = timed(10, 1, 5);
    const levels = (priorityOf: (n: PlannedNode) => number) =>
      Object.fromEntries(scheduleLevels(plan, { workers: 2, durationOf, priorityOf }));
    expect(levels(leavesFirst)).toEqual({ 3: 20, 2: 22, 1: 30, 0: 35 });
    expect(levels(deeperFirst)).toEqual({ 3: 20, 2: 21, 1: 31, 0: 36 });
    for (const priorityOf of [leavesFirst, deeperFirst, nearerTheRoot])
      expect(scheduleLevels(plan, { workers: 2, durationOf, priorityOf }).get(0)).toBe(
        scheduleMakespan(plan, { workers: 2, durationOf, priorityOf }),
      );
  });

  it("gives bench:tree's tree its rounds: 1,024 txs on 256 workers", () => {
    const durationOf = timed(445, 100, 930);
    const plan = planTree(1024);
    // Deeper first: 4 rounds of bases, 2 rounds for the 512 first merges, then one round for
    // each of the 8 levels above them but the root, then the root.
    expect(scheduleMakespan(plan, { workers: 256, durationOf, priorityOf: deeperFirst })).toBe(
      4 * 445 + 2 * 100 + 8 * 100 + 930,
    );
    const levels = scheduleLevels(plan, { workers: 256, durationOf, priorityOf: deeperFirst });
    expect([levels.get(10), levels.get(9), levels.get(1)]).toEqual([
      4 * 445,
      4 * 445 + 2 * 100,
      4 * 445 + 2 * 100 + 8 * 100,
    ]);
    // Every base job at the deepest level, so leaves first is deeper first here.
    expect(scheduleMakespan(plan, { workers: 256, durationOf, priorityOf: leavesFirst })).toBe(
      4 * 445 + 2 * 100 + 8 * 100 + 930,
    );
    // Nearer the root first, as the relay schedules: merges take workers from the later base
    // rounds. The figure was checked against a separate simulation written apart from this one.
    expect(scheduleMakespan(plan, { workers: 256, durationOf, priorityOf: nearerTheRoot })).toBe(
      4155,
    );
  });

  it("stays within Graham's bound for list schedules, and above both lower bounds", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 1, max: 500 }),
        fc.boolean(),
        (txs, workers, base, merge, root, rootFirst) => {
          const plan = planTree(txs);
          const durationOf = timed(base, merge, root);
          const byKey = new Map(plan.nodes.map((n) => [n.key, n]));
          const path = (key: string): number => {
            const n = byKey.get(key)!;
            return durationOf(n) + Math.max(0, ...n.children.map(path));
          };
          const critical = path(plan.root);
          const total = plan.nodes.reduce((s, n) => s + durationOf(n), 0);
          const makespan = scheduleMakespan(plan, {
            workers,
            durationOf,
            priorityOf: rootFirst ? nearerTheRoot : deeperFirst,
          });
          expect(makespan).toBeGreaterThanOrEqual(Math.max(critical, total / workers) - 1e-9);
          expect(makespan).toBeLessThanOrEqual(
            total / workers + (1 - 1 / workers) * critical + 1e-9,
          );
        },
      ),
    );
  });

  it("refuses a worker count that is not a positive integer", () => {
    const plan = planTree(2);
    const model = { durationOf: timed(1, 1, 1), priorityOf: nearerTheRoot };
    expect(() => scheduleMakespan(plan, { ...model, workers: 0 })).toThrow(RangeError);
    expect(() => scheduleMakespan(plan, { ...model, workers: 1.5 })).toThrow(RangeError);
  });
});
