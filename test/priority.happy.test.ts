// Which job a worker gets first, on real Redis and Postgres: within a block, nodes nearer the root
// (lower level) first; across blocks in proving, the earlier proof deadline first. And a parent
// is leasable as soon as its last child's proof is accepted: a long poll waiting for it gets it.
import type { LeasedJob } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";
import {
  expectedProofs,
  openBlock,
  proofOf,
  proveUntilPaid,
  type Signed,
  signIn,
} from "./support/blocks.ts";

let stack: Stack;
const op = account(0xc01);

beforeAll(async () => {
  stack = await startStack({ env: { LEASE_MS: "60000", RATE_LIMIT_PER_IP: "0" } });
  await stack.admin.deposit(op.address, 10n ** 18n);
});
afterAll(async () => stack?.close());

const pos = (j: LeasedJob) => `${j.type}(${j.level},${j.index})`;

/** Leases until `id` comes up (holding everything else); returns all leased jobs by id. */
async function leaseAll(w: Signed, count: number) {
  const jobs = new Map<string, LeasedJob>();
  for (let i = 0; i < count; i++) {
    const job = await w.client.lease(2000);
    expect(job).not.toBeNull();
    jobs.set(job!.id, job!);
  }
  return jobs;
}

describe("within a block", () => {
  it("serves merges nearer the root before deeper merges, and merges before bases", async () => {
    // 8 txs: block_root(0,0) <- merge(1,0..1) <- merge(2,0..3) <- base(3,0..7).
    const blockNumber = 10;
    const { txs } = await openBlock(stack, blockNumber, { txCount: 8, winner: op });
    const bases = await signIn(stack, op, "p-bases", { jobTypes: ["base"], capacity: 8 });
    const merges = await signIn(stack, op, "p-merges", { jobTypes: ["merge"], capacity: 2 });
    const all = await signIn(stack, op, "p-all", { capacity: 8 });
    const held = await leaseAll(bases, 8);
    const base = (i: number) => held.get(`${blockNumber}-3-${i}`)!;
    // Bases 0-3 proven: merge(2,0) and merge(2,1) become ready; prove them: merge(1,0) ready.
    for (const i of [0, 1, 2, 3]) await bases.client.submitResult(base(i).id, proofOf(base(i)));
    for (let i = 0; i < 2; i++) {
      const m = (await merges.client.lease(2000))!;
      expect(m.level).toBe(2);
      await merges.client.submitResult(m.id, proofOf(m));
    }
    // Bases 4-5 proven: merge(2,2) ready. Base 7 handed back: ready again. Base 6 stays held.
    for (const i of [4, 5]) await bases.client.submitResult(base(i).id, proofOf(base(i)));
    await bases.client.failJob(base(7).id, "handing back", true);

    // Ready now: merge(1,0) (level 1), merge(2,2) (level 2), base(3,7) (level 3).
    const order: LeasedJob[] = [];
    for (let i = 0; i < 3; i++) order.push((await all.client.lease(2000))!);
    expect(order.map(pos)).toEqual(["merge(1,0)", "merge(2,2)", "base(3,7)"]);
    expect(await all.client.lease(0)).toBeNull();

    // Finish the block (children's proofs are what the tree says they are).
    const expected = expectedProofs(blockNumber, txs);
    for (const j of order) {
      for (const c of j.children) expect(c.proof).toBe(expected.get(c.id));
      await all.client.submitResult(j.id, proofOf(j));
    }
    await bases.client.submitResult(base(6).id, proofOf(base(6)));
    const block = await proveUntilPaid(stack, blockNumber, [all.client]);
    expect(block.rootProof).toBe(expected.get(`${blockNumber}-0-0`));
  });
});

describe("within a block, unbalanced tree", () => {
  // 5 txs: block_root(0,0) <- merge(1,0), base(1,1); merge(1,0) <- merge(2,0..1) <- base(3,0..3).
  const blockNumber = 11;
  let order: LeasedJob[] = [];

  beforeAll(async () => {
    await openBlock(stack, blockNumber, { txCount: 5, winner: op });
    const bases = await signIn(stack, op, "w-bases", { jobTypes: ["base"], capacity: 5 });
    const all = await signIn(stack, op, "w-all", { capacity: 4 });
    const held = await leaseAll(bases, 5);
    const b = (level: number, index: number) => held.get(`${blockNumber}-${level}-${index}`)!;
    for (const [l, i] of [
      [3, 0],
      [3, 1],
    ] as const) {
      await bases.client.submitResult(b(l, i).id, proofOf(b(l, i)));
    }
    await bases.client.failJob(b(1, 1).id, "handing back", true);
    // Ready now: base(1,1) (level 1) and merge(2,0) (level 2).
    order = [(await all.client.lease(2000))!, (await all.client.lease(2000))!];
  });

  it("both ready jobs are served", () => {
    expect(order.map(pos).sort()).toEqual(["base(1,1)", "merge(2,0)"]);
  });

  // Nearer the root means lower level, across job kinds: in Aztec's unbalanced tree a base can
  // sit nearer the root than a ready merge (5 txs: base(1,1) is the root's right child while
  // merge(2,0) is two levels down). Kind order alone (root -> merge -> base) gets this wrong.
  it("serves the base nearer the root before the deeper merge", () => {
    expect(order.map(pos)).toEqual(["base(1,1)", "merge(2,0)"]);
  });
});

describe("across blocks", () => {
  it("serves the block with the earlier proof deadline first", async () => {
    // Block 21 opens after block 20 but must be proven sooner.
    await openBlock(stack, 20, { txCount: 4, winner: op, proofDeadlineInMs: 9 * 60_000 });
    await openBlock(stack, 21, { txCount: 4, winner: op, proofDeadlineInMs: 6 * 60_000 });
    const w = await signIn(stack, op, "deadlines", { capacity: 8 });
    const firstEight: LeasedJob[] = [];
    for (let i = 0; i < 8; i++) firstEight.push((await w.client.lease(2000))!);
    expect(firstEight.map((j) => j.blockNumber)).toEqual([21, 21, 21, 21, 20, 20, 20, 20]);
    // Block 21's bases proven: its merges come before block 20's (still unproven) bases.
    for (const j of firstEight.filter((j) => j.blockNumber === 21)) {
      await w.client.submitResult(j.id, proofOf(j));
    }
    const next = [(await w.client.lease(2000))!, (await w.client.lease(2000))!];
    expect(next.map((j) => [j.blockNumber, j.type])).toEqual([
      [21, "merge"],
      [21, "merge"],
    ]);
    for (const j of [...next, ...firstEight.filter((j) => j.blockNumber === 20)]) {
      await w.client.submitResult(j.id, proofOf(j));
    }
    await proveUntilPaid(stack, 21, [w.client]);
    await proveUntilPaid(stack, 20, [w.client]);
  });
});

describe("readiness", () => {
  it("a long-polling worker gets a parent as soon as its last child's proof is accepted", async () => {
    const blockNumber = 30;
    const { txs } = await openBlock(stack, blockNumber, { txCount: 4, winner: op });
    const expected = expectedProofs(blockNumber, txs);
    const bases = await signIn(stack, op, "r-bases", { jobTypes: ["base"], capacity: 4 });
    const parents = await signIn(stack, op, "r-parents", {
      jobTypes: ["merge", "block_root"],
      capacity: 1,
    });
    const held = await leaseAll(bases, 4);
    const base = (i: number) => held.get(`${blockNumber}-2-${i}`)!;
    await bases.client.submitResult(base(0).id, proofOf(base(0)));
    await bases.client.submitResult(base(2).id, proofOf(base(2)));

    // Each parent: start a 10 s long poll, then hand in the parent's last child.
    const measured: { parent: string; ms: number }[] = [];
    const waitForParent = async (lastChild: () => Promise<unknown>, parentId: string) => {
      const poll = parents.client.lease(10_000);
      await new Promise((r) => setTimeout(r, 300)); // let the poll start waiting
      const t0 = Date.now();
      await lastChild();
      const job = await poll;
      measured.push({ parent: parentId, ms: Date.now() - t0 });
      expect(job?.id).toBe(parentId);
      for (const c of job!.children) expect(c.proof).toBe(expected.get(c.id));
      await parents.client.submitResult(job!.id, proofOf(job!));
    };
    await waitForParent(
      () => bases.client.submitResult(base(1).id, proofOf(base(1))),
      `${blockNumber}-1-0`,
    );
    await waitForParent(
      () => bases.client.submitResult(base(3).id, proofOf(base(3))),
      `${blockNumber}-1-1`,
    );
    // The root became ready with the second merge's proof; it is leased at once.
    const root = (await parents.client.lease(10_000))!;
    expect(root).toMatchObject({ type: "block_root", level: 0 });
    for (const c of root.children) expect(c.proof).toBe(expected.get(c.id));
    await parents.client.submitResult(root.id, proofOf(root));
    // Measured, not asserted: how long a waiting worker took to receive a ready parent.
    console.info(`parent hand-over after the last child's proof: ${JSON.stringify(measured)}`);
    const block = await proveUntilPaid(stack, blockNumber, [parents.client]);
    expect(block.rootProof).toBe(expected.get(`${blockNumber}-0-0`));
  });
});
