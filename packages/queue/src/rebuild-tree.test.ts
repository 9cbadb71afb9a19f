// Rebuilding a block's tree after Redis lost it, on a real Redis: nodes proven already are not
// jobs again, their proofs travel in their parents' data and are read back as children's proofs
// next to the proofs of children proven after the rebuild; the tree's job count is what the
// aggregator compares to notice a loss, and clearing the tree removes every one of its jobs.
import { randomBytes } from "node:crypto";
import { planTree } from "@prover-boost/core";
import { afterEach, describe, expect, it } from "vitest";
import { jobId, queueFor } from "./catalog.ts";
import { ProofFabric } from "./fabric.ts";

const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const BLOCK = 9;
const hash = (i: number) => `0x${i.toString(16).padStart(64, "0")}` as `0x${string}`;
const proofOf = (id: string) => `0x${Buffer.from(id).toString("hex").padEnd(64, "0")}` as const;

describe("a tree rebuilt with some nodes proven", () => {
  const open: ProofFabric[] = [];
  afterEach(async () => {
    await open[0]?.obliterate();
    await Promise.all(open.splice(0).map((f) => f.close()));
  });

  async function fabric() {
    const prefix = `pbtest-rebuild-${randomBytes(4).toString("hex")}`;
    const f = await ProofFabric.open({ redisUrl, prefix, leaseMs: 1000, checkStalled: false });
    open.push(f);
    return f;
  }

  const plan = planTree(4);
  const byKey = new Map(plan.nodes.map((n) => [n.key, n]));
  const idOfKey = (key: string) => {
    const n = byKey.get(key)!;
    return jobId(BLOCK, n.level, n.index);
  };
  const inputsOf = (n: (typeof plan.nodes)[number]) =>
    n.txIndex !== undefined ? [hash(n.txIndex)] : [];

  it("adds only unproven nodes and hands their parents the proven children's proofs", async () => {
    const f = await fabric();
    expect(await f.addTree(BLOCK, plan, (n) => n.level + 1, inputsOf)).toBe(plan.nodes.length);
    expect(await f.treeJobs(BLOCK)).toBe(plan.nodes.length);

    await f.clearTree(BLOCK);
    expect(await f.treeJobs(BLOCK)).toBe(0);

    // Every base proven, plus the first merge: its parent is left with one proven child and
    // one child still to prove.
    const bases = plan.nodes.filter((n) => n.type === "base");
    const root = byKey.get(plan.root)!;
    const [firstMerge, secondMerge] = root.children.map((k) => byKey.get(k)!);
    expect(firstMerge!.type).toBe("merge");
    const proven = new Map<string, `0x${string}`>(
      [...bases.map((n) => idOfKey(n.key)), idOfKey(firstMerge!.key)].map((id) => [
        id,
        proofOf(id),
      ]),
    );
    const added = await f.addTree(BLOCK, plan, (n) => n.level + 1, inputsOf, proven);
    expect(added).toBe(plan.nodes.length - proven.size);
    expect(await f.treeJobs(BLOCK)).toBe(added);

    // The second merge is ready with both children's proofs from its data.
    const mergeId = idOfKey(secondMerge!.key);
    const merge = await f.jobWithChildProofs(BLOCK, "merge", mergeId);
    expect(merge?.job.data.children).toEqual(secondMerge!.children.map(idOfKey));
    expect(merge?.proofs).toEqual(secondMerge!.children.map((k) => proofOf(idOfKey(k))));
    expect(await merge?.job.getState()).toBe("prioritized");

    // The root waits for the second merge; once that completes, it has both proofs, one from
    // its data and one from BullMQ.
    const taken = await f.take(BLOCK, ["merge"], "token-1");
    expect(taken.taken?.job.id).toBe(mergeId);
    // Completed as the broker does it: BullMQ's move under the lease's token.
    await taken.taken!.job.moveToCompleted(
      { proof: proofOf(`${mergeId}-new`), operator: "0xop", worker: "w" },
      "token-1",
      false,
    );
    const rootId = idOfKey(plan.root);
    const rootKind = queueFor(root.type);
    const read = await f.jobWithChildProofs(BLOCK, rootKind, rootId);
    expect(read?.proofs).toEqual([proofOf(idOfKey(firstMerge!.key)), proofOf(`${mergeId}-new`)]);
    expect(await f.childProofs(read!.job)).toEqual(read?.proofs);
    expect(await read?.job.getState()).toBe("prioritized");
  });

  it("adds nothing when the root is proven", async () => {
    const f = await fabric();
    const proven = new Map([[idOfKey(plan.root), proofOf("root")]]);
    expect(await f.addTree(BLOCK, plan, (n) => n.level + 1, inputsOf, proven)).toBe(0);
    expect(await f.treeJobs(BLOCK)).toBe(0);
  });
});
