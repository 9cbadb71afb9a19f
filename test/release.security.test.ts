// A stopping worker releases the jobs it holds (POST /v1/jobs/:id/fail with shutdown: true),
// counted as no fail. A worker could say "shutdown" on every job to hand work back forever at no
// cost, so a session's free releases are bounded by its capacity: past that, a release is the
// fail it is, counted toward the worker's retry budget.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, relayError, signIn } from "./support/blocks.ts";

describe("shutdown releases", () => {
  const op = account(0x2e);
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({
      env: { RATE_LIMIT_PER_IP: "0", MAX_RETRYABLE_FAILS_PER_WORKER: "3" },
    });
    await stack.admin.deposit(op.address, 10n ** 18n);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("are free up to the session's capacity, then count as fails", async () => {
    await openBlock(stack, 1, { txCount: 4, winner: op });
    const w = await signIn(stack, op, "w1", { capacity: 1 });
    const first = (await w.client.lease(2000))!;
    expect(await w.client.failJob(first.id, "stopping", true, { shutdown: true })).toEqual({
      status: "released",
    });
    // The first release counted toward nothing: the job is offered again with its full budget.
    const second = (await w.client.lease(2000))!;
    const again = await w.client.failJob(second.id, "stopping", true, { shutdown: true });
    expect(again.status).toBe("requeued");
    // Counted: the worker's retry budget on that job went down by one.
    expect((again as { retriesLeft: number }).retriesLeft).toBe(2);
    // A new session (a new signed login) starts with its own allowance.
    const w2 = await signIn(stack, op, "w2", { capacity: 1 });
    const third = (await w2.client.lease(2000))!;
    expect(await w2.client.failJob(third.id, "stopping", true, { shutdown: true })).toEqual({
      status: "released",
    });
    expect(await stack.db.prisma.penalty.count()).toBe(0);
  });

  it("a release refused for a lapsed lease spends none of the session's allowance", async () => {
    const blockNumber = 2;
    await openBlock(stack, blockNumber, { txCount: 4, winner: op });
    const w = await signIn(stack, op, "w3", { capacity: 1 });
    const held = (await w.client.lease(2000))!;
    const row = () => stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: held.id } });
    await eventually(async () => (await row()).status === "leased");
    // The lease is lost before the release arrives: BullMQ's lock (the lease itself) is another
    // token's, for a second, as after a lapse and a new grant.
    const lock = `${stack.prefix}:b${held.blockNumber}-${held.type}:${held.id}:lock`;
    expect(await stack.relay.ctx.fabric.redis.set(lock, "another-lease", "PX", 1000, "XX")).toBe(
      "OK",
    );
    expect(
      await relayError(w.client.failJob(held.id, "stopping", true, { shutdown: true })),
    ).toEqual({ status: 409, code: "LEASE_LOST" });
    expect((await row()).status).toBe("leased");
    // Refused, it changed nothing: the session's one free release is still there. (The lost lease
    // fills the worker's capacity until its lapse is claimed; the next lease may be the same job,
    // back in the queue, under a new lease.)
    const next = await eventually(() => w.client.lease(2000));
    expect(next.leaseExpiresAt).toBeGreaterThan(held.leaseExpiresAt);
    expect(await w.client.failJob(next.id, "stopping", true, { shutdown: true })).toEqual({
      status: "released",
    });
  });

  it("a release sent again after an error is the same release, counted once", async () => {
    await openBlock(stack, 3, { txCount: 4, winner: op });
    const w = await signIn(stack, op, "w4", { capacity: 1 });
    const held = (await w.client.lease(2000))!;
    // Redis fails the job's move back once (a command that timed out): the worker gets a 5xx
    // and, as a worker does, sends the release again.
    const broker = stack.relay.ctx.broker;
    const move = broker.returnUnheardJob;
    let failed = 0;
    broker.returnUnheardJob = async (lease) => {
      if (failed++ === 0) throw new Error("Command timed out");
      return move.call(broker, lease);
    };
    try {
      const first = await relayError(
        w.client.failJob(held.id, "stopping", true, { shutdown: true }),
      );
      expect(first.status).toBeGreaterThanOrEqual(500);
      expect(await w.client.failJob(held.id, "stopping", true, { shutdown: true })).toEqual({
        status: "released",
      });
    } finally {
      broker.returnUnheardJob = move;
    }
    // Released, not failed: the job is offered again, to this worker too, with its whole budget.
    const again = (await eventually(() => w.client.lease(2000)))!;
    expect(again.id).toBe(held.id);
    const counted = await w.client.failJob(again.id, "giving up", true);
    expect((counted as { retriesLeft: number }).retriesLeft).toBe(2);
  });

  it("two releases of one lease sent at once are one release, and spend the allowance", async () => {
    await openBlock(stack, 4, { txCount: 4, winner: op });
    const w = await signIn(stack, op, "w5", { capacity: 1 });
    const held = (await w.client.lease(2000))!;
    const release = () =>
      w.client.failJob(held.id, "stopping", true, { shutdown: true }).catch((e: unknown) => e);
    const answers = await Promise.all([release(), release()]);
    expect(answers).toContainEqual({ status: "released" });
    // The one refused (the lease already released) gave nothing back: the session's one free
    // release is spent, and the next counts as the fail it is.
    const next = (await eventually(() => w.client.lease(2000)))!;
    const again = await w.client.failJob(next.id, "stopping", true, { shutdown: true });
    expect(again.status).toBe("requeued");
  });
});
