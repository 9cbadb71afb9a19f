// Redis itself killed mid-proving (a real redis-server without persistence) and started again
// empty only after the proof deadline: while it is down the aggregator slashes nobody, once it
// is back the aggregator rebuilds the lost tree from Postgres and extends the deadline by the
// outage, and the winner's workers finish the block, paid exactly once.
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, startStack } from "./harness.ts";
import { openBlock, proveUntilPaid, signIn } from "./support/blocks.ts";
import {
  BIDDING_MS,
  checkChildren,
  DEPOSIT,
  expectPaidOnceNoPenalty,
  freePort,
  opA,
  provenRows,
  proveSome,
  startRedisServer,
  TXS,
} from "./support/state-loss.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});

describe("Redis restarted empty, down for longer than the proof window", () => {
  it("rebuilds the tree, slashes nobody, and the winner finishes", async () => {
    const BLOCK = 307;
    const port = await freePort();
    let redis = await startRedisServer(port);
    cleanups.push(async () => {
      if (redis.exitCode === null) redis.kill("SIGKILL");
    });
    const stack = await startStack({
      // The rate limiter counts in Redis: this test is about the aggregator, not the relay's
      // own outage handling.
      env: { LEASE_MS: "2000", REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_PER_IP: "0" },
    });
    cleanups.push(() => stack.close());
    await stack.admin.deposit(opA.address, DEPOSIT);
    const open = await openBlock(stack, BLOCK, {
      winner: opA,
      txCount: TXS,
      biddingMs: BIDDING_MS,
      proofDeadlineInMs: BIDDING_MS + 8000,
    });
    const deadline = open.auction.proofDeadline;
    const w1 = await signIn(stack, opA, "a-1");
    const w2 = await signIn(stack, opA, "a-2");
    await proveSome([w1.client, w2.client], 3);
    const kept = await provenRows(stack, BLOCK);

    redis.kill("SIGKILL");
    await once(redis, "exit");
    await eventually(async () => Date.now() > deadline + 1000, 60_000, 200);
    const during = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: BLOCK } });
    expect(during.stage).toBe("proving");
    expect(during.fabricDownSince).not.toBeNull();
    // Watchers are told the deadline waits (the block's view reads Postgres only).
    expect((await stack.client.getBlock(BLOCK)).deadlinePaused).toBe(true);
    redis = await startRedisServer(port);

    await proveUntilPaid(
      stack,
      BLOCK,
      [w1.client, w2.client],
      checkChildren(BLOCK, open.txs),
      90_000,
    );
    await expectPaidOnceNoPenalty(stack, BLOCK, kept);
    const block = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: BLOCK } });
    expect(Number(block.fabricDownMs)).toBeGreaterThan(0);
  }, 180_000);
});
