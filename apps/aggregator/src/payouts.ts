// Paying out proven blocks. The whole payout of a block (payout rows, activity scores, ledger
// movements, bond release, stage change) is one transaction guarded by the block's stage, so a
// crash or a retry pays each recipient exactly once.
//
// COLLATERAL=chain: the reward split is what the sequencer funded into the escrow for the block
// (escrow:reward:<n>, booked by the relay's indexer from RewardFunded), which must be at least the
// auction's blockReward; a block not funded yet is not paid (logged, tried again each tick). The
// same transaction owes the escrow a `settle` with the same split (which also releases a bond
// still locked), sent by the settler.

import { enqueueSettlement } from "@prover-boost/chain";
import {
  activeProvers,
  activityScoreAt,
  type BoosterConfig,
  blockPayouts,
  type JobType,
  type Payout,
  STAGE,
  boosterShares as sharesFromScore,
  sharesPayouts,
  updateActivityScore,
  weightedWork,
  workWeightedShares,
} from "@prover-boost/core";
import { accounts, applyMovement, balanceOf, moveStage, type Tx } from "@prover-boost/db";
import { BlockRetries } from "./block-retries.ts";
import type { AggregatorContext } from "./context.ts";
import { recordCompletedOrHold } from "./deadlines.ts";

export interface PayoutHooks {
  /** Called inside the payout transaction after the rows are written (crash tests). */
  beforeCommit?: (blockNumber: number) => Promise<void>;
}

/** Blocks paid in one pass, lowest first. */
export const PAYOUT_BATCH = 20;
export async function payProvenBlocks(
  ctx: AggregatorContext,
  hooks: PayoutHooks = {},
  retries: BlockRetries = new BlockRetries(),
  batch = PAYOUT_BATCH,
): Promise<number> {
  const skip = retries.waiting(ctx.now());
  const blocks = await ctx.prisma.block.findMany({
    where: { stage: STAGE.proven, ...(skip.length > 0 ? { number: { notIn: skip } } : {}) },
    select: { number: true, stages: true },
    orderBy: { number: "asc" },
    take: batch,
  });
  for (const { number, stages } of blocks) {
    try {
      // Each prover's work is paid: a relay accepts a proof in BullMQ before its mark reaches
      // Postgres, the root may be recorded before its children, and the paid block's queues go
      // with the payout (every job was completed in BullMQ before the root could be leased).
      const provenAt = (stages as Record<string, number>).proven ?? 0;
      if (!(await recordCompletedOrHold(ctx, number, provenAt, "paying the block"))) {
        // Held (its completed proofs unreadable): it waits too, and does not fill the passes.
        retries.failed(number, ctx.now());
        continue;
      }
      const paid = await payBlock(ctx, number, hooks);
      retries.done(number);
      if (paid) await ctx.fabric.retireBlock(number).catch(() => {});
    } catch (err) {
      // One block that cannot be paid must not hold up the others: it waits a while, and the
      // passes meanwhile go on to the blocks after it.
      const retryInMs = retries.failed(number, ctx.now());
      ctx.log.error({ err, blockNumber: number, retryInMs }, "payout failed");
    }
  }
  return blocks.length;
}

/** Shares model: record this block's proof for each of its provers, then read their shares. */
async function recordActivityAndShares(
  config: BoosterConfig,
  tx: Tx,
  provers: string[],
  epoch: bigint,
): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  // `provers` is sorted, so payouts of other blocks take these rows in the same order. Each row is
  // made and locked before it is read: two payouts with the same prover (two aggregators, a
  // restart overlapping the old process) each lock only their own block, and would otherwise
  // both raise the score from the same value, losing one raise.
  for (const prover of provers) {
    await tx.$executeRaw`
      INSERT INTO "ProverActivity" (prover, value, epoch) VALUES (${prover}, 0, 0)
      ON CONFLICT (prover) DO NOTHING`;
    const [row] = await tx.$queryRaw<{ value: string; epoch: bigint }[]>`
      SELECT value::text AS value, epoch FROM "ProverActivity" WHERE prover = ${prover} FOR UPDATE`;
    const state = { value: BigInt(row!.value), epoch: BigInt(row!.epoch) };
    // Blocks are proven in parallel, so an older block may be paid after a newer one: its proof
    // counts in the prover's latest epoch (scores never move backwards in time).
    const at = epoch > state.epoch ? epoch : state.epoch;
    const next = updateActivityScore(state, at, config);
    await tx.proverActivity.update({
      where: { prover },
      data: { value: next.value.toString(), epoch: next.epoch },
    });
    out.set(prover, sharesFromScore(activityScoreAt(next, at, config), config));
  }
  return out;
}

export async function payBlock(
  ctx: AggregatorContext,
  number: number,
  hooks: PayoutHooks = {},
): Promise<boolean> {
  const now = ctx.now();
  let paidParts: Payout[] = [];
  const paid = await ctx.prisma.$transaction(
    async (tx) => {
      const locked = await tx.$queryRaw<{ stage: string }[]>`
        SELECT stage FROM "Block" WHERE number = ${number} FOR UPDATE`;
      if (locked[0]?.stage !== STAGE.proven) return false;
      const block = await tx.block.findUniqueOrThrow({
        where: { number },
        include: { auction: { select: { blockReward: true, sequencer: true, maxFeeBps: true } } },
      });
      const auction = block.auction;
      const proofs = await tx.proofJob.findMany({
        where: { blockNumber: number, status: "proven", operator: { not: null } },
        select: { operator: true, type: true },
      });
      const onChain = ctx.config.collateral === "chain";
      let reward = BigInt(auction.blockReward.toFixed());
      if (onChain) {
        const funded = await balanceOf(tx, accounts.reward(number));
        if (funded < reward) {
          throw new Error(
            `block ${number}'s reward is not funded in the escrow (${funded} of ${reward} wei indexed)`,
          );
        }
        reward = funded;
      }
      let parts: Payout[];
      const rewards = ctx.config.rewards;
      if (rewards.model === "shares") {
        // Each operator's shares count in proportion to the weighted work it did in this block;
        // one whose work weighs nothing gains no activity either.
        const work = weightedWork(
          proofs.map((p) => ({ operator: p.operator!, type: p.type as JobType })),
          rewards.jobWeights,
        );
        const shares = await recordActivityAndShares(
          rewards.booster,
          tx,
          activeProvers(work),
          BigInt(number),
        );
        parts = sharesPayouts({
          reward,
          sequencerBps: rewards.sequencerBps,
          sequencer: auction.sequencer,
          shares: workWeightedShares(shares, work),
        });
      } else {
        const feeBps = block.feeBps ?? auction.maxFeeBps;
        parts = blockPayouts({
          reward,
          feeBps,
          // The submitter's cut can only come out of what the prover fee leaves.
          submitterBps: Math.min(rewards.submitterBps, 10_000 - feeBps),
          sequencer: auction.sequencer,
          submitter: rewards.submitter ?? auction.sequencer,
          work: weightedWork(
            proofs.map((p) => ({ operator: p.operator!, type: p.type as JobType })),
            rewards.jobWeights,
          ),
        });
      }
      await tx.payout.createMany({
        data: parts.map((p) => ({
          id: `${number}:${p.role}:${p.recipient.toLowerCase()}`,
          blockNumber: number,
          recipient: p.recipient,
          role: p.role,
          amount: p.amount.toString(),
          createdAt: BigInt(now),
        })),
      });
      await applyMovement(tx, {
        kind: "payout",
        legs: [
          { account: onChain ? accounts.reward(number) : accounts.rewards, amount: -reward },
          ...parts.map((p) => ({ account: accounts.earnings(p.recipient), amount: p.amount })),
        ],
        blockNumber: number,
        nowMs: now,
      });
      // The winner's bond comes back unless it was slashed for a missed deadline.
      const slashed = (block.stages as Record<string, number>).deadline_missed !== undefined;
      if (block.winner && block.bondAmount && !slashed) {
        const bond = BigInt(block.bondAmount.toFixed());
        await applyMovement(tx, {
          kind: "unlock",
          legs: [
            { account: accounts.locked(block.winner), amount: -bond },
            { account: accounts.available(block.winner), amount: bond },
          ],
          blockNumber: number,
          nowMs: now,
        });
      }
      if (onChain) {
        await enqueueSettlement(
          tx,
          {
            kind: "settle",
            blockNumber: number,
            recipients: parts.map((p) => p.recipient),
            amounts: parts.map((p) => p.amount),
          },
          now,
        );
      }
      await hooks.beforeCommit?.(number);
      paidParts = parts;
      return moveStage(tx, number, STAGE.proven, STAGE.paid, now);
    },
    { timeout: 30_000 },
  );
  if (paid) ctx.metrics.paid(paidParts);
  return paid;
}
