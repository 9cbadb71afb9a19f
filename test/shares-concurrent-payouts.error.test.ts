// The shares model keeps each prover's activity score, which every paid block the prover worked
// on raises. Two payouts of different blocks with the same prover (two aggregators, or a restart
// that overlaps the old process) each lock only their own block, so both once read the score
// before either wrote it back and one raise was lost: the prover's later shares were smaller
// than it earned. The score's row is now locked before it is read.
import { type ActivityScore, updateActivityScore } from "@prover-boost/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { payBlock } from "../apps/aggregator/src/payouts.ts";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { provenUnpaid, steepBooster } from "./support/market-flow.ts";

const config = steepBooster;
const op = account(0xf5);
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    aggregator: false,
    env: {
      REWARD_MODEL: "shares",
      BOOSTER_MAX_SCORE: config.maxScore.toString(),
      BOOSTER_A: config.a.toString(),
    },
  });
});
afterAll(async () => stack?.close());

it("two payouts at once with the same prover both raise its activity score", async () => {
  await provenUnpaid(stack, op, 1, 2);
  // Block 1's payout holds before it commits until block 2's is waiting on a lock (the score's
  // row), so the two overlap; then both commit.
  const waitingOnScore = async () => {
    const [{ n }] = await stack.db.prisma.$queryRaw<[{ n: number }]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE wait_event_type = 'Lock' AND query ILIKE '%ProverActivity%'`;
    return n > 0;
  };
  let second: Promise<boolean> | null = null;
  const first = payBlock(stack.aggregator.ctx, 1, {
    beforeCommit: async () => {
      second = payBlock(stack.aggregator.ctx, 2);
      await eventually(waitingOnScore, 20_000, 20);
    },
  });
  expect(await first).toBe(true);
  expect(await second).toBe(true);

  let model: ActivityScore = { value: 0n, epoch: 0n };
  for (const epoch of [1n, 2n]) model = updateActivityScore(model, epoch, config);
  const row = await stack.db.prisma.proverActivity.findUniqueOrThrow({
    where: { prover: op.address },
  });
  expect({ value: BigInt(row.value.toFixed()), epoch: row.epoch }).toEqual(model);
}, 90_000);
