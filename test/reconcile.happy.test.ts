// The aggregator's reconciler, on real Redis and Postgres. A relay that dies after BullMQ
// completed a job (the lease check) but before Postgres recorded the proof leaves the proof only
// in BullMQ: the aggregator copies it over, credit and count included, exactly once, while
// proofs that relays record themselves are left alone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, signIn } from "./support/blocks.ts";

describe("a proof completed in BullMQ but never recorded in Postgres", () => {
  const op = account(0x7e);
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ env: { RATE_LIMIT_PER_IP: "0" } });
    await stack.admin.deposit(op.address, 10n ** 18n);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("is recorded by the aggregator once, next to proofs the relay recorded itself", async () => {
    await openBlock(stack, 1, { txCount: 4, winner: op });
    const w = await signIn(stack, op, "w1", { capacity: 2 });
    const a = (await w.client.lease(5000))!;
    const b = (await w.client.lease(5000))!;
    // The ordinary path: the relay records this one.
    await w.client.submitResult(a.id, proofOf(a));
    // The relay's first step only, as if it died right after: BullMQ completes the job.
    const [lease] = await stack.relay.ctx.broker.recordsOf(b.id);
    await stack.relay.ctx.broker.reportProvingJobSuccess(lease!, {
      proof: proofOf(b),
      operator: lease!.operator,
      worker: lease!.workerName,
    });

    const row = await eventually(async () => {
      const r = await stack.db.prisma.proofJob.findUnique({ where: { id: b.id } });
      return r?.status === "proven" && r;
    });
    expect(row).toMatchObject({ proof: proofOf(b), workerId: "w1" });
    // A few more ticks change nothing: each proof is counted once.
    await new Promise((r) => setTimeout(r, 300));
    const proven = await stack.db.prisma.proofJob.count({
      where: { blockNumber: 1, status: "proven" },
    });
    const block = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: 1 } });
    expect(proven).toBe(2);
    expect(block.jobsProven).toBe(2);
  });
});
