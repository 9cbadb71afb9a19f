// A lease its worker never heard of (it left during the long poll) goes straight back to its
// queue. If Redis fails that give-back (a blip), it is tried again until it is done, rather than
// left to lapse later as withholding held against a worker that never knew of the lease. On real
// Redis and Postgres; the blip is the broker's give-back throwing once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { giveBackUnheard } from "../apps/relay/src/services/gateway.ts";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, signIn } from "./support/blocks.ts";

let stack: Stack;
const op = account(0x0b115);
beforeAll(async () => {
  stack = await startStack({ env: { RATE_LIMIT_PER_IP: "0", LEASE_MS: "20000" } });
  await stack.admin.deposit(op.address, 10n ** 18n);
});
afterAll(async () => stack?.close());

describe("giving back a lease its worker never heard of", () => {
  it("is tried again when Redis fails it once, and the job is back for the next worker", async () => {
    await openBlock(stack, 1, { txCount: 1 });
    const gone = await signIn(stack, op, "gone");
    const job = await eventually(() => gone.client.lease(1000));
    const session = await stack.db.prisma.workerSession.findFirstOrThrow({
      where: { workerName: "gone" },
    });
    const broker = stack.relay.ctx.broker;
    const real = broker.returnUnheardJob.bind(broker);
    let failures = 0;
    broker.returnUnheardJob = async (lease) => {
      if (failures++ === 0) throw new Error("Connection is closed.");
      return real(lease);
    };
    try {
      await giveBackUnheard(stack.relay.ctx, session, job.id);
      // Tried again in the background.
      await eventually(async () => failures >= 2, 5000);
    } finally {
      broker.returnUnheardJob = real;
    }
    // Back in its queue at once (not after its 20 s lease), its row queued, no penalty.
    const next = await signIn(stack, op, "next");
    const again = await eventually(() => next.client.lease(500), 5000);
    expect(again.id).toBe(job.id);
    expect(await stack.db.prisma.penalty.count()).toBe(0);
  });
});
