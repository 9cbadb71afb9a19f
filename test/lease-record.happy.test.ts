// A granted lease is answered before its record in the tree view (the job's ProofJob row: leased,
// by whom, under which lease) is written, and a give-back on the same relay waits for that
// record, so the row does not go on showing a lease that ended. On real Redis and Postgres, with
// the record held in the relay on its way to Postgres.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, signIn } from "./support/blocks.ts";

/** A promise and the function that resolves it. */
function gate(): [Promise<void>, () => void] {
  let open: () => void = () => {};
  const shut = new Promise<void>((resolve) => {
    open = resolve;
  });
  return [shut, open];
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
  const rowOf = (id: string) => stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id } });

  it("is not waited for by the lease's answer, and a give-back waits for it", async () => {
    const w = await signIn(stack, op, "w1", { capacity: 1 });
    // The lease's record is held in the relay, before it reaches Postgres.
    const marks = stack.relay.ctx.jobMarks;
    const submit = marks.submit.bind(marks);
    const [released, release] = gate();
    const held = vi.spyOn(marks, "submit").mockImplementation(async (mark) => {
      if (mark.kind === "leased" && mark.worker === "w1") await released;
      return submit(mark);
    });
    // Told when something waits for a lease's record.
    const leaseMarks = stack.relay.ctx.leaseMarks;
    const settled = leaseMarks.settled.bind(leaseMarks);
    const [waiting, waits] = gate();
    const watched = vi.spyOn(leaseMarks, "settled").mockImplementation((token) => {
      waits();
      return settled(token);
    });
    try {
      const job = (await w.client.lease(1000))!;
      expect(job).not.toBeNull();
      expect(leaseMarks.size).toBe(1);
      expect((await rowOf(job.id)).status).toBe("queued");
      const giving = w.client.failJob(job.id, "out of memory", true);
      await waiting;
      release();
      expect(await giving).toMatchObject({ status: "requeued" });
      // The record went in first and the give-back undid it: the row shows no lease.
      expect(await rowOf(job.id)).toMatchObject({ status: "queued", workerId: "w1" });
      expect(leaseMarks.size).toBe(0);
    } finally {
      release();
      held.mockRestore();
      watched.mockRestore();
    }
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
