// A stopped aggregator pauses the market's clock: an aggregator that is down when bidding closes
// closes the auction and fans the tree out only when it comes back, and the winner could not
// lease a single job before that. The time from the bidding close to the fan-out is credited to
// the block's deadline like a fabric outage, so the winner keeps its whole proving window
// (proofDeadline - biddingClosesAt) from the fan-out on, and is slashed only after it. Likewise
// a Redis outage found by an aggregator that has just restarted may have begun while it was
// stopped: it is dated from the block's last change, not from the restart.

import type { ProofFabric } from "@prover-boost/queue";
import { afterAll, beforeAll, expect, it } from "vitest";
import { FabricKeeper } from "../apps/aggregator/src/rebuild.ts";
import { account, openAuction, signedBid } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";

const op = account(0x80);
let stack: Stack;

beforeAll(async () => {
  // The aggregator loop is not started: it is down; its duties run only when the test ticks,
  // on a clock the test sets.
  stack = await startStack({ aggregator: false, env: { RATE_LIMIT_PER_IP: "0" } });
  await stack.admin.deposit(op.address, 10n ** 18n);
});
afterAll(async () => {
  await stack?.close();
});

const slashes = () =>
  stack.db.prisma.penalty.findMany({ where: { blockNumber: 1, kind: "slash" } });

it("gives the winner its whole proving window from the fan-out when the aggregator was down at the close", async () => {
  const bid = await signedBid(op, 1);
  const now = Date.now();
  const closesAt = now + 60_000;
  const deadline = now + 120_000;
  const window = deadline - closesAt;
  const open = await openAuction(1, {
    txCount: 2,
    biddingClosesAt: closesAt,
    proofDeadline: deadline,
  });
  await stack.client.openAuction(open.auction, open.txs, open.signature);
  await stack.client.submitBid(bid.quote, bid.signature);

  // The aggregator comes back after the whole proving window has passed.
  const backAt = deadline + 10_000;
  let clock = backAt;
  stack.aggregator.ctx.now = () => clock;
  // First tick closes the auction and fans the tree out; the second judges deadlines.
  await stack.aggregator.aggregator.tick();
  await stack.aggregator.aggregator.tick();
  let block = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: 1 } });
  expect(block.stage).toBe("proving");
  expect(await slashes()).toEqual([]);
  expect(Number(block.fabricDownMs)).toBe(backAt - closesAt);

  // Still inside the window counted from the fan-out: nothing is slashed.
  clock = backAt + window - 1000;
  await stack.aggregator.aggregator.tick();
  block = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: 1 } });
  expect(block.stage).toBe("proving");
  expect(await slashes()).toEqual([]);

  // Past it, the winner did not prove: slashed, once.
  clock = backAt + window + 1000;
  await stack.aggregator.aggregator.tick();
  block = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: 1 } });
  expect(block.stage).toBe("open_proving");
  expect(await slashes()).toHaveLength(1);
}, 60_000);

it("dates a Redis outage found at the aggregator's restart from the block's last change, not the restart", async () => {
  const bid = await signedBid(op, 2);
  const now = Date.now();
  const closesAt = now + 60_000;
  const open = await openAuction(2, {
    txCount: 2,
    biddingClosesAt: closesAt,
    proofDeadline: closesAt + 60_000,
  });
  await stack.client.openAuction(open.auction, open.txs, open.signature);
  await stack.client.submitBid(bid.quote, bid.signature);
  let clock = closesAt + 1000;
  stack.aggregator.ctx.now = () => clock;
  await stack.aggregator.aggregator.tick();
  const proving = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: 2 } });
  expect(proving.stage).toBe("proving");

  // The aggregator stops; Redis goes down meanwhile; the aggregator restarts 30 s later and its
  // very first probe finds Redis unreachable.
  clock += 30_000;
  const unreachable = { redis: { status: "end" } } as unknown as ProofFabric;
  const restarted = new FabricKeeper({ ...stack.aggregator.ctx, fabric: unreachable });
  expect(await restarted.probe()).toBe(false);
  const down = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: 2 } });
  expect(down.fabricDownSince).toBe(proving.updatedAt);
}, 60_000);
