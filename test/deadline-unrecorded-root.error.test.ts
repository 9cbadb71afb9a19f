// A root proof the relay accepted (BullMQ completed it, the lease check) before the proof
// deadline, but whose Postgres record is not there when the deadline is judged: the relay died
// between the two steps, its group-committed marks trail, or Postgres was briefly down. The
// winner proved in time; the aggregator records such proofs before it slashes anyone, so the
// block is proven and paid, never deadline_missed.
import { rootJobTypes } from "@prover-boost/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, signIn } from "./support/blocks.ts";

const op = account(0x7f);
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ env: { RATE_LIMIT_PER_IP: "0" } });
  await stack.admin.deposit(op.address, 10n ** 18n);
});
afterAll(async () => {
  await stack?.close();
});

it("does not slash a winner whose root proof the relay accepted before the deadline", async () => {
  const DEADLINE_IN = 600_000;
  const t0 = Date.now();
  await openBlock(stack, 1, { txCount: 2, winner: op, proofDeadlineInMs: DEADLINE_IN });
  // From here the aggregator runs only when the test ticks it, on a clock the test sets.
  await stack.aggregator.aggregator.stop();
  const w = await signIn(stack, op, "w1", { capacity: 1 });
  let root: Awaited<ReturnType<typeof w.client.lease>> = null;
  while (!root) {
    const job = await w.client.lease(1000);
    if (!job) continue;
    if (rootJobTypes.includes(job.type)) root = job;
    else await w.client.submitResult(job.id, proofOf(job));
  }
  // The relay's first step only, well before the deadline: BullMQ completes the root job, and
  // the relay dies before recording it in Postgres.
  const [lease] = await stack.relay.ctx.broker.recordsOf(root.id);
  await stack.relay.ctx.broker.reportProvingJobSuccess(lease!, {
    proof: proofOf(root),
    operator: lease!.operator,
    worker: lease!.workerName,
  });
  expect(Date.now()).toBeLessThan(t0 + DEADLINE_IN);
  const before = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: 1 } });
  expect(before.stage).toBe("proving");

  // The aggregator's next tick comes after the deadline (it was slow, or stopped meanwhile).
  stack.aggregator.ctx.now = () => Date.now() + DEADLINE_IN + 60_000;
  await stack.aggregator.aggregator.tick();
  await stack.aggregator.aggregator.tick();

  const block = await stack.client.getBlock(1);
  const penalties = await stack.db.prisma.penalty.findMany({ where: { blockNumber: 1 } });
  expect(penalties.filter((p) => p.kind === "slash")).toEqual([]);
  expect(Object.keys(block.stages)).not.toContain("deadline_missed");
  expect(block.stage).toBe("paid");
  const rootRow = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: root.id } });
  expect(rootRow).toMatchObject({ status: "proven", proof: proofOf(root), workerId: "w1" });
}, 60_000);
