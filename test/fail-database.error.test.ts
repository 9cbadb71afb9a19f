// A worker hands a job back (a retryable fail) while the relay cannot reach Postgres, on real
// Redis and Postgres with the relay's link cut. The job still goes back to its queue and the
// fail counts once: refused, the worker would send it again until it gave up, each try counted
// toward its bars, and its lease would then lapse as a withholding it never committed. The row
// the relay could not mark is marked by the job's next lease.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { bullState, openBlock, signIn } from "./support/blocks.ts";

let stack: Stack;
const winner = account(0xe5);

beforeAll(async () => {
  stack = await startStack({
    relayDatabaseLink: true,
    env: { LEASE_MS: "30000", RATE_LIMIT_PER_IP: "0" },
  });
  await stack.admin.deposit(winner.address, 100_000n);
});
afterAll(async () => stack?.close());

describe("a retryable fail while the relay's link to Postgres is cut", () => {
  it("hands the job back, counted once, and the job's next lease marks its row", async () => {
    const blockNumber = 1;
    await openBlock(stack, blockNumber, { txCount: 2, winner, proofDeadlineInMs: 120_000 });
    const a1 = await signIn(stack, winner, "a1", { capacity: 2 });
    const a2 = await signIn(stack, winner, "a2", { capacity: 2 });
    const held = [(await a1.client.lease(2000))!, (await a1.client.lease(2000))!];
    const given = held[0]!;
    // Both leases recorded in their rows before the link goes.
    await eventually(async () => {
      const rows = await stack.db.prisma.proofJob.findMany({
        where: { id: { in: held.map((j) => j.id) }, status: "leased", workerId: "a1" },
      });
      return rows.length === 2;
    });

    stack.relayDatabase!.cut();
    expect(await a1.client.failJob(given.id, "out of memory", true)).toEqual({
      status: "requeued",
      retriesLeft: 2,
    });
    expect(await bullState(stack, blockNumber, given.type, given.id)).not.toBe("active");
    // The row still names a1's lease: the relay could not write it.
    expect(
      await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: given.id } }),
    ).toMatchObject({ status: "leased", workerId: "a1" });
    // Sent again (its answer lost): the lease is gone, nothing more is counted.
    await expect(a1.client.failJob(given.id, "out of memory", true)).rejects.toMatchObject({
      status: 409,
      code: "LEASE_LOST",
    });
    const attempts = stack.relay.ctx.fabric.attempts;
    expect(await attempts.jobFails(blockNumber, given.id)).toBe(1);

    stack.relayDatabase!.restore();
    // The only ready job: a2 leases it, and its lease's record marks the row.
    const again = (await a2.client.lease(5000))!;
    expect(again.id).toBe(given.id);
    await eventually(async () => {
      const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: given.id } });
      return row.status === "leased" && row.workerId === "a2";
    }, 30_000);
  });
});
