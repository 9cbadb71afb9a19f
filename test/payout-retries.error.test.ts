// A block whose payout keeps failing (in chain mode, a reward the escrow index un-booked; any
// error the payout's transaction meets) is retried after a growing wait, and meanwhile the
// passes go on to the blocks after it: a few such blocks never hold up every later payout. And a
// paid block whose tree could not be removed from Redis then is removed later, not left there.
import { createAggregator } from "@prover-boost/aggregator";
import { aggregatorEnv, parseEnv } from "@prover-boost/config";
import { afterAll, beforeAll, expect, it } from "vitest";
import { BlockRetries } from "../apps/aggregator/src/block-retries.ts";
import { payProvenBlocks } from "../apps/aggregator/src/payouts.ts";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack, TEST_REDIS_URL } from "./harness.ts";
import { testDomainEnv } from "./support/domain.ts";
import { provenUnpaid, stageOf } from "./support/market-flow.ts";

const op = account(0xf6);
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ aggregator: false });
});
afterAll(async () => stack?.close());

it("a block that cannot be paid waits its turn while the next ones are paid", async () => {
  await provenUnpaid(stack, op, 1, 2, 3);
  let now = Date.now();
  const ctx = { ...stack.aggregator.ctx, now: () => now };
  const retries = new BlockRetries();
  let failures = 0;
  const hooks = {
    beforeCommit: async (n: number) => {
      if (n === 1) {
        failures++;
        throw new Error("block 1's payout fails (test)");
      }
    },
  };
  // One block a pass: block 1 fails first, then the passes go on to blocks 2 and 3.
  for (let pass = 0; pass < 3; pass++) await payProvenBlocks(ctx, hooks, retries, 1);
  expect(failures).toBe(1);
  expect([await stageOf(stack, 2), await stageOf(stack, 3)]).toEqual(["paid", "paid"]);
  expect(await stageOf(stack, 1)).toBe("proven");
  // Its wait over, block 1 is tried again, and paid once it can be.
  now += 1_000;
  await payProvenBlocks(ctx, hooks, retries, 1);
  expect(failures).toBe(2);
  now += 1_999;
  await payProvenBlocks(ctx, {}, retries, 1);
  expect(await stageOf(stack, 1)).toBe("proven");
  now += 1;
  await payProvenBlocks(ctx, {}, retries, 1);
  expect(await stageOf(stack, 1)).toBe("paid");
}, 90_000);

it("removes a paid block's tree left in Redis when its payout's removal failed", async () => {
  // Another aggregator process on the same prefix, its loop not started: only its look for paid
  // blocks left in Redis runs, at start (nothing yet) and every 100 ms.
  const other = await createAggregator(
    parseEnv(aggregatorEnv, {
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: stack.prefix,
      ...testDomainEnv,
    }),
    { db: stack.db, retireLeftoversEveryMs: 100 },
  );
  try {
    await provenUnpaid(stack, op, 4);
    const fabric = stack.aggregator.ctx.fabric;
    const retire = fabric.retireBlock.bind(fabric);
    fabric.retireBlock = async () => {}; // Redis away as the block is paid: nothing removed
    try {
      await payProvenBlocks(stack.aggregator.ctx);
    } finally {
      fabric.retireBlock = retire;
    }
    expect(await stageOf(stack, 4)).toBe("paid");
    expect(await fabric.blocksInRedis()).toContain(4);
    await eventually(async () => !(await fabric.blocksInRedis()).includes(4), 10_000);
  } finally {
    await other.close();
  }
}, 90_000);

it("a block held because its completed proofs cannot be read does not fill the passes", async () => {
  await provenUnpaid(stack, op, 7, 8);
  // A leaf of block 7 accepted in BullMQ whose mark has not reached Postgres (marks trail).
  await stack.db.prisma.proofJob.update({ where: { id: "7-0-0" }, data: { status: "queued" } });
  let now = Date.now();
  const base = stack.aggregator.ctx.fabric;
  // Block 7's completed proofs cannot be read (Redis answers, but not for it).
  const fabric = Object.create(base) as typeof base;
  fabric.completed = async (n, ids) => {
    if (n === 7) throw new Error("WRONGTYPE Operation against a key holding the wrong kind");
    return base.completed(n, ids);
  };
  const ctx = { ...stack.aggregator.ctx, fabric, now: () => now };
  const retries = new BlockRetries();
  // One block a pass: block 7 is held, and the next pass pays block 8 meanwhile.
  await payProvenBlocks(ctx, {}, retries, 1);
  await payProvenBlocks(ctx, {}, retries, 1);
  expect([await stageOf(stack, 7), await stageOf(stack, 8)]).toEqual(["proven", "paid"]);
  // Its wait over and its proofs readable, block 7 is paid.
  now += 1_000;
  await payProvenBlocks({ ...ctx, fabric: base }, {}, retries, 1);
  expect(await stageOf(stack, 7)).toBe("paid");
  const leaf = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: "7-0-0" } });
  expect(leaf.status).toBe("proven");
}, 90_000);
