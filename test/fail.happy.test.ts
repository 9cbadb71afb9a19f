// POST /v1/jobs/{id}/fail on real Redis and Postgres. Retryable: the job goes back to the queue
// and another worker leases it. Not retryable: the job is failed (ProofJob "failed", BullMQ
// failed) and not leased again; its parent can never become ready, so a committed block cannot
// be proven by its winner. The block then goes down the deadline path: at proofDeadline the
// bond is slashed, the block opens to everyone, the failed job is re-issued (to anyone but the
// worker that failed it), and once proven the block is paid with the expected root.
import type { LeasedJob } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import {
  bullState,
  expectedProofs,
  expectedRoot,
  openBlock,
  proofOf,
  proveUntilPaid,
  type Signed,
  signIn,
  tryLease,
} from "./support/blocks.ts";

let stack: Stack;
const winner = account(0xe1);
const outsider = account(0xe2);
const BOND = 5000n; // signedBid's default bond
const DEADLINE_MS = 15_000;

beforeAll(async () => {
  stack = await startStack({ env: { LEASE_MS: "30000", RATE_LIMIT_PER_IP: "0" } });
  await stack.admin.deposit(winner.address, 100_000n);
  await stack.admin.deposit(outsider.address, 100_000n);
});
afterAll(async () => stack?.close());

describe("a committed block with a failed job", () => {
  const blockNumber = 1;
  let txs: `0x${string}`[];
  let a1: Signed;
  let a2: Signed;
  let bases: Map<string, LeasedJob>;
  let failed: LeasedJob;

  beforeAll(async () => {
    ({ txs } = await openBlock(stack, blockNumber, {
      txCount: 4,
      winner,
      proofDeadlineInMs: DEADLINE_MS,
    }));
    a1 = await signIn(stack, winner, "a1", { capacity: 4 });
    a2 = await signIn(stack, winner, "a2", { capacity: 4 });
    bases = new Map();
    for (let i = 0; i < 4; i++) {
      const j = (await a1.client.lease(2000))!;
      bases.set(j.id, j);
    }
  });

  it("retryable: the job goes back to the queue and another worker leases it", async () => {
    const [given] = [...bases.values()];
    expect(await a1.client.failJob(given!.id, "out of memory", true)).toEqual({
      status: "requeued",
      retriesLeft: 2,
    });
    bases.delete(given!.id);
    expect(await bullState(stack, blockNumber, given!.type, given!.id)).not.toBe("failed");
    // It is the only ready job: a2 gets it.
    const again = (await a2.client.lease(2000))!;
    expect(again.id).toBe(given!.id);
    expect(again.inputs).toEqual(given!.inputs);
    await a2.client.submitResult(again.id, proofOf(again));
    const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: again.id } });
    expect(row).toMatchObject({ status: "proven", workerId: "a2", operator: winner.address });
    // The giver holds no lease on it any more.
    await expect(a1.client.submitResult(given!.id, proofOf(given!))).rejects.toMatchObject({
      status: 409,
      code: "LEASE_LOST",
    });
  });

  it("not retryable: the job is failed and not leased again", async () => {
    // Fail one of the bases a1 still holds.
    const ids = [...bases.keys()].sort();
    failed = bases.get(ids[0]!)!;
    expect(await a1.client.failJob(failed.id, "bad witness", false)).toEqual({ status: "failed" });
    bases.delete(failed.id);
    const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: failed.id } });
    expect(row.status).toBe("failed");
    expect(row.proof).toBeNull();
    expect(await bullState(stack, blockNumber, failed.type, failed.id)).toBe("failed");
    expect(
      (await stack.client.getTree(blockNumber)).nodes.find((n) => n.id === failed.id),
    ).toMatchObject({ status: "failed" });

    // The winner proves everything else it can; the failed job never comes back.
    for (const j of bases.values()) await a1.client.submitResult(j.id, proofOf(j));
    const leasedAfter: string[] = [];
    for (;;) {
      const got = await tryLease(a2.client, 1500);
      if (got.status !== 200 || !("job" in got)) break;
      leasedAfter.push(got.job.id);
      await a2.client.submitResult(got.job.id, proofOf(got.job));
    }
    expect(leasedAfter).not.toContain(failed.id);
    expect(leasedAfter.every((id) => id.startsWith(`${blockNumber}-1-`))).toBe(true);
    const block = await stack.client.getBlock(blockNumber);
    expect(block.stage).toBe("proving");
    const tree = await stack.client.getTree(blockNumber);
    const failedNode = tree.nodes.find((n) => n.id === failed.id)!;
    expect(failedNode.status).toBe("failed");
    // Its parent and the root wait; everything else is proven.
    const parentId = tree.nodes.find((n) => n.children.includes(failed.id))!.id;
    for (const n of tree.nodes) {
      if (n.id === failed.id || n.id === parentId || n.level === 0)
        expect(n.status).not.toBe("proven");
      else expect(n.status).toBe("proven");
    }
  });

  it("goes down the deadline path: slashed, open proving, failed job re-issued, paid", async () => {
    const opened = await eventually(
      async () => {
        const b = await stack.client.getBlock(blockNumber);
        return b.stage === "open_proving" ? b : null;
      },
      DEADLINE_MS + 20_000,
      100,
    );
    expect(Object.keys(opened.stages)).toEqual([
      "auction_open",
      "committed",
      "proving",
      "deadline_missed",
      "open_proving",
    ]);
    const slash = await stack.db.prisma.penalty.findMany({ where: { blockNumber, kind: "slash" } });
    expect(slash).toHaveLength(1);
    expect(slash[0]!.operator).toBe(winner.address);
    expect(slash[0]!.amount.toFixed()).toBe(BOND.toString());

    // Anyone may now prove it: an outsider's worker gets the re-issued job.
    const o = await signIn(stack, outsider, "outsider");
    const reissued = await eventually(() => o.client.lease(2000), 20_000, 0);
    expect(reissued.id).toBe(failed.id);
    await o.client.submitResult(reissued.id, proofOf(reissued));
    const block = await proveUntilPaid(stack, blockNumber, [o.client, a2.client]);
    expect(block.rootProof).toBe(expectedRoot(blockNumber, txs));
    const rows = await stack.db.prisma.proofJob.findMany({ where: { blockNumber } });
    const expected = expectedProofs(blockNumber, txs);
    expect(rows.every((r) => r.status === "proven" && r.proof === expected.get(r.id))).toBe(true);
    expect(rows.find((r) => r.id === failed.id)).toMatchObject({ operator: outsider.address });
    // The slashed bond is not given back.
    const w = await stack.client.getProver(winner.address);
    expect(w.collateral.locked).toBe("0");
    expect(BigInt(w.collateral.available)).toBe(100_000n - BOND);
  });
});

describe("an open-proving block with a failed job", () => {
  it("re-issues the job (no deadline to wait for) and the block is paid", async () => {
    const blockNumber = 2;
    const { txs } = await openBlock(stack, blockNumber, { txCount: 2 });
    const o = await signIn(stack, outsider, "open-1", { capacity: 2 });
    const o2 = await signIn(stack, outsider, "open-2", { capacity: 2 });
    const job = (await o.client.lease(2000))!;
    expect(await o.client.failJob(job.id, "bad witness", false)).toEqual({ status: "failed" });
    // The aggregator puts it back in the queue for every worker but the one that failed it.
    const again = await eventually(
      async () => {
        const j = await o2.client.lease(1000);
        if (j && j.id !== job.id) {
          await o2.client.submitResult(j.id, proofOf(j));
          return null;
        }
        return j;
      },
      20_000,
      0,
    );
    expect(again.id).toBe(job.id);
    await o2.client.submitResult(again.id, proofOf(again));
    const block = await proveUntilPaid(stack, blockNumber, [o.client, o2.client]);
    expect(block.rootProof).toBe(expectedRoot(blockNumber, txs));
  });
});
