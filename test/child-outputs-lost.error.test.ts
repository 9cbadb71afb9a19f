// A ready job whose children's outputs Redis no longer holds (its "processed" hash evicted or
// lost while the rest of the tree survived), on real Redis and Postgres. The outputs are the
// children's recorded proofs, so the relay serves them from Postgres: the worker is never handed
// a job it cannot prove, and a result is never judged against a missing input. An output that
// neither holds yet (a proof's mark still on its way) is nobody's fault: the lease request or the
// result is answered 503 and retried, with nothing charged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, proveUntilPaid, relayError, signIn } from "./support/blocks.ts";

describe("children's outputs lost from Redis", () => {
  const op = account(0x2c7);
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ env: { LEASE_MS: "5000", RATE_LIMIT_PER_IP: "0" } });
    await stack.admin.deposit(op.address, 10n ** 18n);
  });
  afterAll(async () => stack?.close());

  const rowOf = (id: string) => stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id } });

  /** Drops a job's record of its children's results from Redis (BullMQ's "<job>:processed"). */
  async function loseOutputs(blockNumber: number, id: string) {
    const { fabric } = stack.relay.ctx;
    const job = (await fabric.getJob(blockNumber, "merge", id))!;
    const key = `${job.queueQualifiedName}:${id}:processed`;
    await fabric.redis.del(key);
    expect(await fabric.redis.exists(key)).toBe(0);
  }

  /** Leases two sibling base jobs and proves them; their parent is then ready. */
  async function provenSiblings(blockNumber: number, name: string) {
    await openBlock(stack, blockNumber, { txCount: 4, winner: op });
    const w = await signIn(stack, op, name, { capacity: 2 });
    const a = (await w.client.lease(0))!;
    const b = (await w.client.lease(0))!;
    for (const j of [a, b])
      expect(await w.client.submitResult(j.id, proofOf(j))).toEqual({ status: "accepted" });
    const [ra, rb] = await eventually(async () => {
      const rows = await Promise.all([rowOf(a.id), rowOf(b.id)]);
      return rows.every((r) => r.status === "proven") ? rows : null;
    });
    expect(ra!.parentId).toBe(rb!.parentId);
    return {
      w,
      parentId: ra!.parentId!,
      outputs: new Map([
        [a.id, ra!.proof],
        [b.id, rb!.proof],
      ]),
    };
  }

  it("serves them from Postgres, to the lease and to the result's check", async () => {
    const blockNumber = 1;
    const { w, parentId, outputs } = await provenSiblings(blockNumber, "lost-1");
    await loseOutputs(blockNumber, parentId);

    const parent = (await w.client.lease(0))!;
    expect(parent.id).toBe(parentId);
    for (const c of parent.children) expect(c.output).toBe(outputs.get(c.id));

    // The result is checked against the outputs read again (the relay's own read of the lease
    // forgotten), which Redis still lacks: the right proof is accepted, nobody is charged.
    const { broker } = stack.relay.ctx;
    broker.forget(broker.knownLease(w.sessionId, parent.id)!);
    await loseOutputs(blockNumber, parentId);
    expect(await w.client.submitResult(parent.id, proofOf(parent))).toEqual({ status: "accepted" });
    expect(await rowOf(parentId)).toMatchObject({ status: "proven" });
    await proveUntilPaid(stack, blockNumber, [w.client]);
    expect(await stack.db.prisma.penalty.count({ where: { blockNumber } })).toBe(0);
  });

  it("answers 503 while an output is nowhere yet, and charges nobody", async () => {
    const blockNumber = 2;
    const { w, parentId, outputs } = await provenSiblings(blockNumber, "lost-2");
    const childIds = [...outputs.keys()];
    // As if the children's marks had not reached Postgres yet.
    const hide = () =>
      stack.db.prisma.proofJob.updateMany({
        where: { id: { in: childIds } },
        data: { status: "leased" },
      });
    const show = () =>
      stack.db.prisma.proofJob.updateMany({
        where: { id: { in: childIds } },
        data: { status: "proven" },
      });

    await loseOutputs(blockNumber, parentId);
    await hide();
    const refused = await relayError(w.client.lease(0));
    expect(refused).toMatchObject({ status: 503, code: "UNAVAILABLE" });
    // Not held against the worker: the job is free again at once.
    expect(await stack.relay.ctx.broker.liveCount(w.sessionId)).toBe(0);
    await show();

    const parent = (await w.client.lease(0))!;
    expect(parent.id).toBe(parentId);
    const { broker } = stack.relay.ctx;
    broker.forget(broker.knownLease(w.sessionId, parent.id)!);
    await loseOutputs(blockNumber, parentId);
    await hide();
    const unchecked = await relayError(w.client.submitResult(parent.id, proofOf(parent)));
    expect(unchecked).toMatchObject({ status: 503, code: "UNAVAILABLE" });
    // The lease is still the worker's: once the outputs are back, the same proof is accepted.
    expect(await stack.relay.ctx.broker.liveCount(w.sessionId)).toBe(1);
    await show();
    expect(await w.client.submitResult(parent.id, proofOf(parent))).toEqual({ status: "accepted" });
    await proveUntilPaid(stack, blockNumber, [w.client]);
    expect(await stack.db.prisma.penalty.count({ where: { blockNumber } })).toBe(0);
  });
});
