// One block whose fan-out fails on every try (its queues' keys in Redis are not what BullMQ
// expects) does not hold up the blocks after it: it is logged and tried again after a wait, and
// the others are fanned out. On real Postgres and Redis.
import { blockQueueName, treeQueueKinds } from "@prover-boost/queue";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlockRetries } from "../apps/aggregator/src/block-retries.ts";
import { fanOutClosedBlocks } from "../apps/aggregator/src/fan-out.ts";
import { type Stack, startStack } from "./harness.ts";
import { closeUnclaimed } from "./support/unclaimed.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ aggregator: false });
});
afterAll(async () => stack?.close());

const stageOf = async (n: number) =>
  (await stack.db.prisma.block.findUniqueOrThrow({ where: { number: n } })).stage;

describe("a block whose fan-out keeps failing", () => {
  it("does not hold up the blocks after it, and waits before it is tried again", async () => {
    await closeUnclaimed(stack, [30, 31], { txCount: 2 });
    expect([await stageOf(30), await stageOf(31)]).toEqual(["unclaimed", "unclaimed"]);
    // Block 30's queues' event streams and meta hashes are plain strings in Redis.
    const redis = stack.aggregator.ctx.fabric.redis;
    for (const kind of treeQueueKinds(2)) {
      const queue = `${stack.prefix}:${blockQueueName(30, kind)}`;
      await redis.set(`${queue}:events`, "not a stream");
      await redis.set(`${queue}:meta`, "not a hash");
    }
    const retries = new BlockRetries();
    const now = Date.now();
    await fanOutClosedBlocks(stack.aggregator.ctx, retries);
    expect([await stageOf(30), await stageOf(31)]).toEqual(["unclaimed", "open_proving"]);
    // Left out of the passes until its wait is over.
    expect(retries.waiting(now)).toEqual([30]);
  });
});
