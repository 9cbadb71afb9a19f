// A granted lease is answered before its record in the tree view (the job's ProofJob row: leased,
// by whom, under which lease) is written, and whatever ends the lease waits for that record, so
// the row never goes on showing a lease that ended. On real Redis and Postgres: a transaction
// holding the block's job rows keeps the record waiting.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, signIn } from "./support/blocks.ts";

/** Holds every job row of a block (FOR UPDATE) in a transaction until released. */
async function holdRows(stack: Stack, blockNumber: number) {
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let held: () => void = () => {};
  const holding = new Promise<void>((resolve) => {
    held = resolve;
  });
  const done = stack.db.prisma.$transaction(
    async (tx) => {
      await tx.$queryRaw`SELECT id FROM "ProofJob" WHERE "blockNumber" = ${blockNumber}::integer FOR UPDATE`;
      held();
      await released;
    },
    { maxWait: 10_000, timeout: 60_000 },
  );
  await Promise.race([holding, done]);
  return async () => {
    release();
    await done;
  };
}

describe("a lease's record in Postgres", () => {
  const op = account(0x2e);
  const blockNumber = 1;
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ env: { LEASE_MS: "30000", RATE_LIMIT_PER_IP: "0" } });
    await stack.admin.deposit(op.address, 10n ** 18n);
    await openBlock(stack, blockNumber, { txCount: 2, winner: op });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("is not waited for by the lease's answer, and a give-back waits for it", async () => {
    const w = await signIn(stack, op, "w1", { capacity: 1 });
    const release = await holdRows(stack, blockNumber);
    let job: Awaited<ReturnType<typeof w.client.lease>>;
    let giving: Promise<unknown>;
    try {
      job = await w.client.lease(1000);
      expect(job).not.toBeNull();
      // Answered while the record waits for the held row.
      expect(stack.relay.ctx.leaseMarks.size).toBe(1);
      const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job!.id } });
      expect(row.status).toBe("queued");
      giving = w.client.failJob(job!.id, "out of memory", true);
    } finally {
      await release();
    }
    expect(await giving).toMatchObject({ status: "requeued" });
    // The record went in first and the give-back undid it: the row shows no lease.
    const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job!.id } });
    expect(row).toMatchObject({ status: "queued", workerId: "w1" });
    expect(stack.relay.ctx.leaseMarks.size).toBe(0);
  });

  it("shows the lease once written, and the proof's record replaces it", async () => {
    const w = await signIn(stack, op, "w2", { capacity: 1 });
    const job = (await w.client.lease(1000))!;
    const leased = await eventually(async () => {
      const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job.id } });
      return row.status === "leased" ? row : null;
    });
    expect(leased).toMatchObject({ operator: op.address, workerId: "w2" });
    await w.client.submitResult(job.id, proofOf(job));
    const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(row).toMatchObject({ status: "proven", workerId: "w2" });
  });
});
