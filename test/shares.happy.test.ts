// The shares reward model (Aztec's booster) end to end on real Redis and Postgres. Blocks whose
// auctions got no bid are proven in open proving by workers of two operators; the aggregator
// records each prover's activity score (epoch = block number) and pays the prover pool by
// shares weighted by each one's work in the block. Expected payouts are recomputed with the core rules from the proofs actually made.
// The booster curve is made steep (BOOSTER_MAX_SCORE, BOOSTER_A) so that scores this low still
// earn different shares and the split depends on them.
import {
  type ActivityScore,
  activityScoreAt,
  type BoosterConfig,
  boosterShares,
  defaultJobWeights,
  type JobType,
  sharesPayouts,
  updateActivityScore,
  weightedWork,
  workWeightedShares,
} from "@prover-boost/core";
import type { BlockView } from "@prover-boost/sdk";
import type { LocalAccount } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { type Stack, sequencer, startStack } from "./harness.ts";
import {
  openUnclaimed,
  proveInTurns,
  signIn,
  stageOf,
  steepBooster,
  waitForStage,
} from "./support/market-flow.ts";

const SEQUENCER_BPS = 2000;
const REWARD = 1_000_000_000_000_000_009n;
const config: BoosterConfig = steepBooster;

const opX = account(0xf1);
const opY = account(0xf2);
const opZ = account(0xf3);

let stack: Stack;
/** The activity scores as the rules say they should be after each paid block. */
const model = new Map<string, ActivityScore>();

beforeAll(async () => {
  stack = await startStack({
    env: {
      REWARD_MODEL: "shares",
      SEQUENCER_BPS: String(SEQUENCER_BPS),
      BOOSTER_MAX_SCORE: config.maxScore.toString(),
      BOOSTER_A: config.a.toString(),
    },
  });
});
afterAll(async () => stack?.close());

/** Opens an auction nobody bids on, and proves its block with the given operators in turns. */
function proveUnclaimed(blockNumber: number, operators: LocalAccount[]): Promise<BlockView> {
  return proveUnclaimedUntil(blockNumber, operators, "paid");
}

async function proveUnclaimedUntil(
  blockNumber: number,
  operators: LocalAccount[],
  until: BlockView["stage"] | BlockView["stage"][],
): Promise<BlockView> {
  await openUnclaimed(stack, blockNumber, { blockReward: REWARD.toString(), txCount: 4 });
  await waitForStage(stack, blockNumber, "open_proving");
  const workers = await Promise.all(
    operators.map((op, i) => signIn(stack, op, `b${blockNumber}-w${i}`)),
  );
  return proveInTurns(stack, blockNumber, workers, until);
}

/** Expected payouts of a paid block: record each prover's proof in the model, read shares. */
async function expectedPayouts(blockNumber: number) {
  const jobs = await stack.db.prisma.proofJob.findMany({ where: { blockNumber } });
  const epoch = BigInt(blockNumber);
  const provers = [...new Set(jobs.map((j) => j.operator!))].sort();
  const shares = new Map<string, bigint>();
  for (const p of provers) {
    const next = updateActivityScore(model.get(p) ?? { value: 0n, epoch: 0n }, epoch, config);
    model.set(p, next);
    shares.set(p, boosterShares(activityScoreAt(next, epoch, config), config));
  }
  const work = weightedWork(
    jobs.map((j) => ({ operator: j.operator!, type: j.type as JobType })),
    defaultJobWeights,
  );
  return {
    jobs,
    shares,
    payouts: sharesPayouts({
      reward: REWARD,
      sequencerBps: SEQUENCER_BPS,
      sequencer: sequencer.address,
      shares: workWeightedShares(shares, work),
    }),
  };
}

const norm = (ps: { recipient: string; role: string; amount: bigint | string }[]) =>
  ps
    .map((p) => ({ recipient: p.recipient, role: p.role, amount: p.amount.toString() }))
    .sort((x, y) => (x.role + x.recipient < y.role + y.recipient ? -1 : 1));

async function activityRows() {
  const rows = await stack.db.prisma.proverActivity.findMany({ orderBy: { prover: "asc" } });
  return Object.fromEntries(
    rows.map((r) => [r.prover, { value: BigInt(r.value.toFixed()), epoch: r.epoch }]),
  );
}

describe("the shares reward model", () => {
  it("pays an unclaimed block's prover pool by activity shares", async () => {
    const block = await proveUnclaimed(100, [opX, opY]);
    expect(Object.keys(block.stages)).toEqual(
      expect.arrayContaining(["auction_open", "unclaimed", "open_proving", "proven", "paid"]),
    );
    expect(block.winner).toBeNull();

    const { jobs, shares, payouts } = await expectedPayouts(100);
    expect(jobs.every((j) => j.status === "proven")).toBe(true);
    // Both operators proved (taking turns), so both are in the pool, with equal fresh scores.
    expect([...shares.keys()]).toEqual([opX.address, opY.address].sort());
    expect(shares.get(opX.address)).toBe(693_750n);
    expect(norm(block.payouts)).toEqual(norm(payouts));
    expect(block.payouts.reduce((s, p) => s + BigInt(p.amount), 0n)).toBe(REWARD);
    const seqPay = block.payouts.find((p) => p.role === "sequencer")!;
    expect(seqPay.recipient).toBe(sequencer.address);
    expect(BigInt(seqPay.amount)).toBe((REWARD * BigInt(SEQUENCER_BPS)) / 10_000n);

    expect(await activityRows()).toEqual({
      [opX.address]: { value: 125_000n, epoch: 100n },
      [opY.address]: { value: 125_000n, epoch: 100n },
    });
  });

  it("raises the score of a prover that proves again in the next epoch", async () => {
    const block = await proveUnclaimed(101, [opX, opZ]);
    const { shares, payouts } = await expectedPayouts(101);
    expect([...shares.keys()]).toEqual([opX.address, opZ.address].sort());
    // X: 125000 decays by 100000 over one epoch, then gains 125000; Z starts fresh.
    expect(shares.get(opX.address)).toBe(775_000n);
    expect(shares.get(opZ.address)).toBe(693_750n);
    expect(norm(block.payouts)).toEqual(norm(payouts));
    expect(block.payouts.reduce((s, p) => s + BigInt(p.amount), 0n)).toBe(REWARD);
    const pay = (addr: string) => BigInt(block.payouts.find((p) => p.recipient === addr)!.amount);
    expect(pay(opX.address)).toBeGreaterThan(pay(opZ.address));

    const rows = await activityRows();
    expect(rows).toEqual({
      [opX.address]: { value: 150_000n, epoch: 101n },
      [opY.address]: { value: 125_000n, epoch: 100n },
      [opZ.address]: { value: 125_000n, epoch: 101n },
    });
    expect(rows[opX.address]!.value).toBeGreaterThan(125_000n);
    for (const [prover, state] of model) expect(rows[prover]).toEqual(state);
  });

  // Regression: blocks are proven in parallel, so a block can be paid after a later-numbered
  // one; its proof counts in the prover's latest epoch, and no block holds up the others.
  it("proves a block numbered below the last paid one, and a later one", async () => {
    await proveUnclaimedUntil(99, [opX], ["proven", "paid"]);
    await proveUnclaimedUntil(102, [opY], ["proven", "paid"]);
  });

  it("pays a block proven after a later-numbered block", async () => {
    // One pass of the aggregator over the proven blocks (the running loop may race it: either
    // way the block must be paid once this pass is over).
    await stack.aggregator.aggregator.tick().catch(() => {});
    expect(await stageOf(stack, 99)).toBe("paid");
  });

  it("keeps paying later blocks", async () => {
    await stack.aggregator.aggregator.tick().catch(() => {});
    expect(await stageOf(stack, 102)).toBe("paid");
  });
});
