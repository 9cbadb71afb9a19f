// A lease request that fails after the relay already took a job from the queue, on real Redis
// and Postgres: the worker never hears of that lease, so it must not be left to lapse (which
// would hold the worker's capacity and count as withholding against its operator). Postgres is
// made to refuse the answer's read of the base job's transaction data by renaming its table.
// And a lease whose record in the tree view cannot be written (the function that writes it
// renamed) is still a lease: that record is written after the answer, and the proof's own
// record, which a result waits for, stands for it.
import type { LeasedJob } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import {
  bullState,
  openBlock,
  proofOf,
  relayError,
  type Signed,
  signIn,
} from "./support/blocks.ts";

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
    await stack.db.prisma.$executeRawUnsafe(`ALTER TABLE "BlockTx" RENAME TO "BlockTx_off"`);
    let failed: { status: number; code: string };
    try {
      failed = await relayError(w.client.lease(1000));
    } finally {
      await stack.db.prisma.$executeRawUnsafe(`ALTER TABLE "BlockTx_off" RENAME TO "BlockTx"`);
    }
    expect(failed.status).toBe(500);
    expect(failed.code).toBe("INTERNAL");
    // Both base jobs are ready in the queue again, and nobody holds a lease. The lease's record,
    // written after the answer, was undone with it: neither row shows a lease.
    const bases = [`${blockNumber}-1-0`, `${blockNumber}-1-1`];
    for (const id of bases) {
      expect(["prioritized", "waiting"]).toContain(await bullState(stack, blockNumber, "base", id));
      expect(await stack.relay.ctx.broker.recordsOf(id)).toEqual([]);
    }
    await eventually(async () => stack.relay.ctx.leaseMarks.size === 0);
    const rows = await stack.db.prisma.proofJob.findMany({ where: { id: { in: bases } } });
    expect(rows.map((r) => r.status)).toEqual(["queued", "queued"]);
    // Longer than LEASE_MS later, nothing lapsed: no penalty, the capacity slot is free.
    await new Promise((r) => setTimeout(r, 2000));
    expect(await stack.db.prisma.penalty.count()).toBe(0);
    const job = (await w.client.lease(1000))!;
    expect(bases).toContain(job.id);
    await w.client.submitResult(job.id, proofOf(job));
  });

  /** A lease taken while job marks cannot be written (their function renamed). */
  async function leaseUnrecorded(w: Signed): Promise<LeasedJob | null> {
    await stack.db.prisma.$executeRawUnsafe(
      "ALTER FUNCTION pb_job_marks(jsonb, bigint) RENAME TO pb_job_marks_off",
    );
    try {
      const job = await w.client.lease(1000);
      await eventually(async () => stack.relay.ctx.leaseMarks.size === 0);
      return job;
    } finally {
      await stack.db.prisma.$executeRawUnsafe(
        "ALTER FUNCTION pb_job_marks_off(jsonb, bigint) RENAME TO pb_job_marks",
      );
    }
  }

  it("is a lease all the same when only its record in the tree view fails", async () => {
    const w = await signIn(stack, op, "w2", { capacity: 1 });
    // The record fails: the row does not show the lease.
    const job = await leaseUnrecorded(w);
    // The other base job (the first test proved one).
    expect(job?.id).toMatch(new RegExp(`^${blockNumber}-1-[01]$`));
    const before = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job!.id } });
    expect(before.status).toBe("queued");
    // The worker proves it, and the proof's record says who did.
    expect(await w.client.submitResult(job!.id, proofOf(job!))).toMatchObject({
      status: "accepted",
    });
    const after = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job!.id } });
    expect(after).toMatchObject({ status: "proven", operator: op.address, workerId: "w2" });
    expect(await stack.db.prisma.penalty.count()).toBe(0);
  });

  it("is failed for good in its row when its worker fails it, record or not", async () => {
    await openBlock(stack, 2, { txCount: 2, winner: op });
    const w = await signIn(stack, op, "w3", { capacity: 1 });
    const job = await leaseUnrecorded(w);
    // The row never showed the lease; the fail still reaches it, so the deadline path, which
    // re-issues the failed rows it finds, sees the job.
    expect(await w.client.failJob(job!.id, "cannot prove this", false)).toEqual({
      status: "failed",
    });
    const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job!.id } });
    expect(row.status).toBe("failed");
  });
});
