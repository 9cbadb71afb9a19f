// Lease bookkeeping under races, on real Redis and Postgres, through the HTTP API: a lease's
// record in Redis expires by itself; a bad proof sent on a lease that already lapsed neither
// deletes the record nor hides the lapse; and with several relays, a lapse caught by a relay
// that restarted meanwhile is still withholding when another relay was up the whole time (the
// worker could have sent its heartbeats there).
import { createRelay, type Relay } from "@prover-boost/relay";
import { RelayClient } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, proveUntilPaid, relayError, signIn } from "./support/blocks.ts";

const BAD_PROOF = `0x${"ab".repeat(32)}`;

async function listen(relay: Relay): Promise<string> {
  await relay.app.listen({ port: 0, host: "127.0.0.1" });
  const address = relay.app.server.address();
  return `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
}

describe("lease records", () => {
  const op = account(0x7a1);
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({
      env: { LEASE_MS: "2000", WITHHOLD_PENALTY_WEI: "5", RATE_LIMIT_PER_IP: "0" },
    });
    await stack.admin.deposit(op.address, 10n ** 18n);
  });
  afterAll(async () => stack?.close());

  it("carry a TTL, so a record nobody claims does not stay in Redis forever", async () => {
    const blockNumber = 1;
    await openBlock(stack, blockNumber, { txCount: 1, winner: op });
    const w = await signIn(stack, op, "ttl");
    const job = (await w.client.lease(2000))!;
    const redis = stack.relay.ctx.fabric.redis;
    const keys = await redis.keys(`${stack.prefix}:pb:lease:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(await redis.pttl(key)).toBeGreaterThan(0);
    await w.client.submitResult(job.id, proofOf(job));
    await proveUntilPaid(stack, blockNumber, [w.client]);
  });

  it("a bad proof on a lease that already lapsed is LEASE_LOST, and the lapse is recorded", async () => {
    const blockNumber = 2;
    await openBlock(stack, blockNumber, { txCount: 1, winner: op });
    const w = await signIn(stack, op, "lapsed");
    const job = (await w.client.lease(2000))!;
    // The lease lapses: BullMQ's lock (the lease itself) is gone.
    await stack.relay.ctx.fabric.redis.del(`${stack.prefix}:b${blockNumber}-base:${job.id}:lock`);
    expect(await relayError(w.client.submitResult(job.id, BAD_PROOF))).toEqual({
      status: 409,
      code: "LEASE_LOST",
    });
    const penalties = await eventually(async () => {
      const rows = await stack.db.prisma.penalty.findMany({ where: { blockNumber } });
      return rows.length > 0 ? rows : null;
    });
    expect(penalties.map((p) => [p.jobId, p.workerId, p.kind])).toEqual([
      [job.id, "lapsed", "withholding"],
    ]);
    const other = await signIn(stack, op, "other");
    await proveUntilPaid(stack, blockNumber, [other.client]);
  });
});

describe("a lapse caught by a relay that restarted while another stayed up", () => {
  const op = account(0x7a2);
  const blockNumber = 1;
  let stack: Stack;
  let b: Relay | undefined;
  let restarted: Relay | undefined;

  beforeAll(async () => {
    stack = await startStack({
      env: { LEASE_MS: "6000", WITHHOLD_PENALTY_WEI: "5", RATE_LIMIT_PER_IP: "0" },
    });
    await stack.admin.deposit(op.address, 10n ** 18n);
  });
  afterAll(async () => {
    await b?.close();
    if (restarted) {
      await restarted.ctx.fabric.obliterate().catch(() => {});
      await restarted.close();
    }
    await stack?.close();
  });

  it("is withholding: the worker could have sent its heartbeats to the relay that stayed up", async () => {
    // Relay B is up throughout (it never looks at the block's queues, so it does not catch it).
    b = await createRelay(stack.relay.env, { db: stack.db });
    await listen(b);
    // Two base jobs: the restarted relay opens the block's queues (and so finds lapses there)
    // when it first takes a job from them.
    await openBlock(stack, blockNumber, { txCount: 2, winner: op });
    const silent = await signIn(stack, op, "silent");
    const held = (await silent.client.lease(2000))!;
    // The worker heard of its lease (it renews it once; a lease never renewed whose relay died
    // is forgiven: the answer may never have reached it). Then relay A restarts while the lease
    // runs, and the worker stays silent.
    await silent.client.heartbeat(held.id);
    await stack.relay.close();
    restarted = await createRelay(stack.relay.env, { db: stack.db });
    const client = new RelayClient({ baseUrl: await listen(restarted) });
    const finisher = await signIn({ client }, op, "finisher");
    // The restarted relay finds the lapse once it looks at the block's queues.
    const job = await eventually(async () => {
      const j = await finisher.client.lease(500);
      if (j && j.id !== held.id) await finisher.client.submitResult(j.id, proofOf(j));
      return j?.id === held.id ? j : null;
    }, 40_000);
    await finisher.client.submitResult(job.id, proofOf(job));
    const penalties = await eventually(async () => {
      const rows = await stack.db.prisma.penalty.findMany({ where: { blockNumber } });
      return rows.length > 0 ? rows : null;
    });
    expect(penalties.map((p) => [p.jobId, p.workerId, p.kind])).toEqual([
      [held.id, "silent", "withholding"],
    ]);
  });
});
