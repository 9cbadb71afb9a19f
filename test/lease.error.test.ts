// A lease request that fails after the relay already took a job from the queue, on real Redis
// and Postgres: the worker never hears of that lease, so it must not be left to lapse (which
// would hold the worker's capacity and count as withholding against its operator). Postgres is
// made to refuse the lease's bookkeeping by renaming the function that writes it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";
import { bullState, openBlock, proofOf, relayError, signIn } from "./support/blocks.ts";

describe("a lease whose bookkeeping fails", () => {
  const op = account(0x1e);
  const blockNumber = 1;
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({
      env: { LEASE_MS: "1000", WITHHOLD_PENALTY_WEI: "5", RATE_LIMIT_PER_IP: "0" },
    });
    await stack.admin.deposit(op.address, 10n ** 18n);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("fails the request and puts the job straight back: no lease, no lapse, no penalty", async () => {
    await openBlock(stack, blockNumber, { txCount: 2, winner: op });
    const w = await signIn(stack, op, "w1", { capacity: 1 });
    await stack.db.prisma.$executeRawUnsafe(
      "ALTER FUNCTION pb_job_marks(jsonb, bigint) RENAME TO pb_job_marks_off",
    );
    let failed: { status: number; code: string };
    try {
      failed = await relayError(w.client.lease(1000));
    } finally {
      await stack.db.prisma.$executeRawUnsafe(
        "ALTER FUNCTION pb_job_marks_off(jsonb, bigint) RENAME TO pb_job_marks",
      );
    }
    expect(failed.status).toBe(500);
    expect(failed.code).toBe("INTERNAL");
    // Both base jobs are ready in the queue again, and nobody holds a lease.
    const bases = [`${blockNumber}-1-0`, `${blockNumber}-1-1`];
    for (const id of bases) {
      expect(["prioritized", "waiting"]).toContain(await bullState(stack, blockNumber, "base", id));
      expect(await stack.relay.ctx.broker.recordsOf(id)).toEqual([]);
    }
    // Longer than LEASE_MS later, nothing lapsed: no penalty, the capacity slot is free.
    await new Promise((r) => setTimeout(r, 2000));
    expect(await stack.db.prisma.penalty.count()).toBe(0);
    const job = (await w.client.lease(1000))!;
    expect(bases).toContain(job.id);
    await w.client.submitResult(job.id, proofOf(job));
  });
});
