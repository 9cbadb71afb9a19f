// Proof deadlines: a committed block whose root proof is not in by its deadline is
// deadline_missed, the winner's bond is slashed (SLASH_TO_SEQUENCER_BPS to the sequencer, the
// rest burned) and the block goes to open proving, keeping every proof already accepted. The
// deadline is the auction's proofDeadline plus the time the proof fabric was unavailable
// (Block.fabricDownMs, see rebuild.ts), and a block is never slashed while an outage is open or
// while this process cannot reach the fabric: the winner is not punished for our faults.
//
// What is judged is whether the root proof was accepted, and a relay accepts a proof in BullMQ
// (where the lease is checked) before it records it in Postgres. A relay that died between the
// two steps, group-committed marks trailing, or Postgres briefly down leave an accepted proof
// only in BullMQ, and the reconciler records those only after REPAIR_AFTER_MS. So before a block
// is judged, the proofs BullMQ completed and Postgres lacks are recorded for it at once; a root
// among them makes the block proven, and it is not slashed. Every proof accepted before the
// deadline was completed before this tick began, so this read sees it. If that read fails
// (Redis unreachable, or too slow) the block is not judged this tick; a read that still fails
// JUDGE_READ_GIVE_UP_MS after the deadline (Redis answers, but not for this block) no longer
// holds the block: it is judged on what Postgres has, and the failure is logged as an error.
import { enqueueSettlement } from "@prover-boost/chain";
import { STAGE } from "@prover-boost/core";
import { accounts, applyMovement, moveStage, recordPenalty } from "@prover-boost/db";
import pTimeout from "p-timeout";
import type { AggregatorContext } from "./context.ts";
import { recordCompletedProofs } from "./reconcile.ts";

/** How long reading a late block's completed proofs may take before it is left for a later tick. */
export const JUDGE_READ_TIMEOUT_MS = 5000;

/**
 * How long after its deadline a block whose completed proofs cannot be read waits to be judged
 * without them (a read that keeps failing while Redis answers would hold it for good).
 */
export const JUDGE_READ_GIVE_UP_MS = 15 * 60_000;

/** `fabricUp`: whether the fabric answers right now (checked again before each slash). */
export async function enforceDeadlines(
  ctx: AggregatorContext,
  fabricUp: () => boolean = () => true,
): Promise<number> {
  const now = ctx.now();
  const late = await ctx.prisma.$queryRaw<{ number: number; deadline: bigint }[]>`
    SELECT b.number, a."proofDeadline" + b."fabricDownMs" AS deadline
    FROM "Block" b JOIN "Auction" a ON a."blockNumber" = b.number
    WHERE b.stage = ${STAGE.proving} AND b."fabricDownSince" IS NULL
      AND a."proofDeadline" + b."fabricDownMs" <= ${BigInt(now)}::bigint
    ORDER BY b.number LIMIT 20`;
  let slashed = 0;
  for (const { number, deadline: due } of late) {
    if (!fabricUp()) break;
    try {
      const recorded = await pTimeout(recordCompletedProofs(ctx, number), {
        milliseconds: JUDGE_READ_TIMEOUT_MS,
      });
      if (recorded > 0) {
        ctx.log.warn(
          { blockNumber: number, recorded },
          "recorded proofs accepted but not recorded before judging the proof deadline",
        );
      }
    } catch (err) {
      if (BigInt(now) - due < BigInt(JUDGE_READ_GIVE_UP_MS)) {
        ctx.log.warn(
          { err, blockNumber: number },
          "could not read the proofs BullMQ completed: proof deadline not judged this tick",
        );
        continue;
      }
      ctx.log.error(
        { err, blockNumber: number },
        "the proofs BullMQ completed still cannot be read: proof deadline judged on Postgres alone",
      );
    }
    let slashedWei: bigint | null = null;
    const missed = await ctx.prisma.$transaction(async (tx) => {
      slashedWei = null;
      // Locked, so an outage opened meanwhile (rebuild.ts) is seen here or waits for this.
      await tx.$queryRaw`SELECT number FROM "Block" WHERE number = ${number} FOR UPDATE`;
      const block = await tx.block.findUniqueOrThrow({
        where: { number },
        include: { auction: { select: { proofDeadline: true, sequencer: true } } },
      });
      const deadline = block.auction.proofDeadline + block.fabricDownMs;
      if (block.fabricDownSince !== null || deadline > BigInt(now)) return false;
      if (!(await moveStage(tx, number, STAGE.proving, STAGE.deadline_missed, now))) return false;
      // A bond a withdrawal the escrow took first shrank to nothing is not slashed (nothing is
      // locked, here or on chain).
      const bond = BigInt(block.bondAmount?.toFixed() ?? "0");
      if (block.winner && bond > 0n) {
        const toSequencer = (bond * BigInt(ctx.config.slashToSequencerBps)) / 10_000n;
        await applyMovement(tx, {
          kind: "slash",
          legs: [
            { account: accounts.locked(block.winner), amount: -bond },
            { account: accounts.earnings(block.auction.sequencer), amount: toSequencer },
            { account: accounts.burn, amount: bond - toSequencer },
          ],
          blockNumber: number,
          ref: block.winner,
          nowMs: now,
        });
        if (ctx.config.collateral === "chain") {
          await enqueueSettlement(
            tx,
            {
              kind: "slash",
              blockNumber: number,
              slashToSequencerBps: ctx.config.slashToSequencerBps,
            },
            now,
          );
        }
        await recordPenalty(tx, {
          id: `${number}:slash`,
          kind: "slash",
          blockNumber: number,
          operator: block.winner,
          amount: bond,
          nowMs: now,
        });
        slashedWei = bond;
      }
      await moveStage(tx, number, STAGE.deadline_missed, STAGE.open_proving, now);
      return true;
    });
    if (!missed) continue;
    slashed++;
    if (slashedWei !== null) ctx.metrics.slashed(slashedWei);
    await reissueFailedJobs(ctx, number);
    // Every operator's workers may now lease this block's jobs.
    await ctx.fabric.announceBlocks();
    ctx.log.warn(
      { blockNumber: number },
      "proof deadline missed: bond slashed, block in open proving",
    );
  }
  return slashed;
}

/**
 * Jobs failed for good (a non-retryable fail, or the attempt cap, MAX_JOB_ATTEMPTS) are given to
 * everyone again once a block is open, with a fresh attempt count (the workers and operators
 * barred from a job stay barred). Bounded: the first MAX_JOB_REISSUES re-issues of a job are
 * made at once; after that, at most one every REISSUE_BACKOFF_MS, each logged as an error naming
 * the block and the job. Nothing after open proving moves a block on, so stopping outright would
 * strand it silently; the backoff keeps a job nobody can prove from cycling fast while a worker
 * that signs in later (or an operator's fix) can still prove it, and the log tells the operator.
 */
export async function reissueFailedJobs(
  ctx: AggregatorContext,
  blockNumber: number,
): Promise<void> {
  const now = ctx.now();
  const attempts = ctx.fabric.attempts;
  const retried = await ctx.fabric.retryFailed(blockNumber, async (id) => {
    const before = await attempts.reissues(blockNumber, id);
    const beyond = before.count >= ctx.config.reissues.max;
    if (beyond && now - before.lastMs < ctx.config.reissues.backoffMs) return false;
    await attempts.reissued(blockNumber, id, now);
    if (beyond) {
      ctx.log.error(
        { blockNumber, jobId: id, reissues: before.count + 1 },
        "a job keeps failing in open proving: re-issued after the backoff; the block waits for a worker that can prove it",
      );
    }
    return true;
  });
  if (retried.length === 0) return;
  await ctx.prisma.proofJob.updateMany({
    where: { id: { in: retried }, status: "failed" },
    data: { status: "queued" },
  });
  ctx.log.info({ blockNumber, jobs: retried.length }, "failed jobs re-issued for open proving");
}

/**
 * Blocks already in open proving have no deadline left to wait for: re-issue failures now,
 * within the bound above (reissueFailedJobs).
 */
export async function reissueInOpenProving(ctx: AggregatorContext): Promise<void> {
  const blocks = await ctx.prisma.proofJob.findMany({
    where: { status: "failed", block: { stage: STAGE.open_proving } },
    select: { blockNumber: true },
    distinct: ["blockNumber"],
    take: 20,
  });
  for (const { blockNumber } of blocks) await reissueFailedJobs(ctx, blockNumber);
}
