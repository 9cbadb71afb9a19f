// A proof the relay accepted (BullMQ completed it: the lease check) whose Postgres record is not
// there when its block is paid: the relay died between the two steps, its group-committed marks
// trailed, or Postgres was briefly down. Its prover did the work and is paid for it: before a
// block is paid the aggregator records the proofs BullMQ completed and Postgres lacks (the paid
// block's queues are removed with it, so later there is nothing left to read). If BullMQ cannot
// be read then (Redis unreachable), the block waits for a later tick.
import { rootJobTypes } from "@prover-boost/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { payProvenBlocks } from "../apps/aggregator/src/payouts.ts";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, signIn } from "./support/blocks.ts";
import { withTicks } from "./support/market-flow.ts";

const honest = account(0x81);
const other = account(0x82);
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ env: { RATE_LIMIT_PER_IP: "0" }, aggregator: false });
  await stack.admin.deposit(honest.address, 10n ** 18n);
  await stack.admin.deposit(other.address, 10n ** 18n);
});
afterAll(async () => {
  await stack?.close();
});

/**
 * Block `n` in open proving, one leaf proved by `honest` in BullMQ only (the relay's first step,
 * then it died), every other job proved by `other` through the relay, until the root is recorded.
 */
async function provenWithAnUnrecordedLeaf(n: number) {
  // The aggregator runs only when the test ticks it: here until the block is fanned out.
  await withTicks(stack, () => openBlock(stack, n, { txCount: 2 }));
  const a = await signIn(stack, honest, `a${n}`, { capacity: 1 });
  const leaf = (await eventually(() => a.client.lease(1000)))!;
  expect(rootJobTypes).not.toContain(leaf.type);
  const [lease] = await stack.relay.ctx.broker.recordsOf(leaf.id);
  await stack.relay.ctx.broker.reportProvingJobSuccess(lease!, {
    proof: proofOf(leaf),
    operator: lease!.operator,
    worker: lease!.workerName,
  });
  const b = await signIn(stack, other, `b${n}`, { capacity: 1 });
  for (;;) {
    const job = await b.client.lease(1000);
    if (!job) continue;
    await b.client.submitResult(job.id, proofOf(job));
    if (rootJobTypes.includes(job.type)) break;
  }
  await eventually(async () => (await stack.client.getBlock(n)).stage === "proven");
  const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: leaf.id } });
  expect(row.status).not.toBe("proven");
  return leaf;
}

const proverPayouts = (blockNumber: number) =>
  stack.db.prisma.payout.findMany({ where: { blockNumber, role: "prover" } });

it("pays a prover whose accepted proof Postgres had not recorded when the block was paid", async () => {
  const leaf = await provenWithAnUnrecordedLeaf(1);

  await stack.aggregator.aggregator.tick();

  expect((await stack.client.getBlock(1)).stage).toBe("paid");
  const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: leaf.id } });
  expect(row).toMatchObject({ status: "proven", operator: honest.address, workerId: "a1" });
  const paid = await proverPayouts(1);
  expect(paid.map((p) => p.recipient).sort()).toEqual([honest.address, other.address].sort());
  expect(paid.every((p) => BigInt(p.amount.toFixed()) > 0n)).toBe(true);
}, 60_000);

it("waits to pay a block while BullMQ cannot be read, then pays every prover", async () => {
  const leaf = await provenWithAnUnrecordedLeaf(2);
  const fabric = stack.aggregator.ctx.fabric;
  const completed = fabric.completed.bind(fabric);
  fabric.completed = async () => {
    throw new Error("Redis unreachable (test)");
  };
  try {
    await payProvenBlocks(stack.aggregator.ctx);
    expect((await stack.client.getBlock(2)).stage).toBe("proven");
    expect(await proverPayouts(2)).toEqual([]);
  } finally {
    fabric.completed = completed;
  }
  await payProvenBlocks(stack.aggregator.ctx);
  expect((await stack.client.getBlock(2)).stage).toBe("paid");
  const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: leaf.id } });
  expect(row.operator).toBe(honest.address);
  expect((await proverPayouts(2)).map((p) => p.recipient).sort()).toEqual(
    [honest.address, other.address].sort(),
  );
}, 60_000);
