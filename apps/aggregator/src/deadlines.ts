// Proof deadlines: a committed block whose root proof is not in by its deadline is
// deadline_missed, the winner's bond is slashed (SLASH_TO_SEQUENCER_BPS to the sequencer, the
// rest burned) and the block goes to open proving, keeping every proof already accepted. The
// deadline is the auction's proofDeadline plus the time the proof fabric was unavailable
// (Block.fabricDownMs, see rebuild.ts), and a block is never slashed while an outage is open or
// while this process cannot reach the fabric: the winner is not punished for our faults.
//
// No relay present is such an outage, whatever this process itself reaches: every relay down
// (a crash loop, a bad rollout), cut off from Redis or Postgres, or Redis refusing their writes
// (maxmemory), and the winner's workers can neither lease nor hand in a proof. A relay is present
// when its broker's presence (packages/queue's presence.ts, the record the lapse rule reads) was
// refreshed, and the relay was ready, within the last `freshMs` of Redis's clock: LEASE_MS / 3,
// or two refresh periods if longer (presenceTimingsOf), the same bound within which the lapse
// rule counts another relay as present; a refresh runs every LEASE_MS / 4 (at most 1 s), so one
// late refresh is not an outage. Concretely:
// - the refresh is a write, so a relay whose writes Redis refuses, or that cannot reach Redis,
//   or whose process is dead or stopped, stops being present within `freshMs`;
// - a relay that cannot reach Postgres is not ready (it cannot serve): its presence follows a
//   `SELECT 1` sent with each refresh on a connection of its own (Database.ping: a pool busy with
//   load is not a database gone), and it counts as absent from its
//   last good answer while the last check failed or one has gone unanswered for `freshMs`;
// - a relay starting (until it serves: createRelay returns, an L1 pass may come first) or
//   stopping (from its close) fails that check too, so a crash loop does not look present;
// - a relay that is overloaded but still refreshes (its event loop behind, OVERLOAD_LAG_MS) is
//   present: the lapse rule forgives lapses in that time, but a deadline is not moved for it.
// The keeper (rebuild.ts) opens the outage on every block its winner is proving (and every block
// in open proving, whose window it lengthens) when no relay is present, dated from when a relay
// was last seen able to serve (a relay that closed cleanly records that moment as it leaves;
// Redis without any relay's record lost its data, and the keeper dates that from when it first
// found it), and closes it, crediting the stretch, once one is present again. Between a relay's
// last refresh and the `freshMs` after which the outage opens, a block whose deadline falls in
// that gap is not judged either: a block is slashed only once a relay has been seen able to
// serve at or after its deadline, so the winner could have proven up to it. A gap this process
// never saw (stopped throughout it, back after a relay was) is credited from the relays' log of
// gaps by the keeper's pass that comes before any judging (rebuild.ts, creditGaps).
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
import { BlockRetries } from "./block-retries.ts";
import type { AggregatorContext } from "./context.ts";
import { recordCompletedProofs } from "./reconcile.ts";
import { type RelaySighting, sightRelays } from "./relays.ts";

/** How long reading a late block's completed proofs may take before it is left for a later tick. */
export const JUDGE_READ_TIMEOUT_MS = 5000;

/**
 * How long after its deadline a block whose completed proofs cannot be read waits to be judged
 * without them (a read that keeps failing while Redis answers would hold it for good).
 */
export const JUDGE_READ_GIVE_UP_MS = 15 * 60_000;

/**
 * Before a block is judged or paid: records the proofs BullMQ completed and Postgres lacks
 * (reconcile.ts), within JUDGE_READ_TIMEOUT_MS. Returns whether `action` may go on now: not while
 * BullMQ cannot be read, until JUDGE_READ_GIVE_UP_MS after `since` (a read that keeps failing
 * while Redis answers would hold the block for good); then it goes on with what Postgres has,
 * logged as an error.
 */
export async function recordCompletedOrHold(
  ctx: AggregatorContext,
  blockNumber: number,
  since: number,
  action: string,
): Promise<boolean> {
  try {
    const recorded = await pTimeout(recordCompletedProofs(ctx, blockNumber), {
      milliseconds: JUDGE_READ_TIMEOUT_MS,
    });
    if (recorded > 0) {
      ctx.log.warn({ blockNumber, recorded }, `recorded accepted proofs before ${action}`);
    }
    return true;
  } catch (err) {
    if (ctx.now() - since < JUDGE_READ_GIVE_UP_MS) {
      ctx.log.warn(
        { err, blockNumber },
        `could not read the proofs BullMQ completed: ${action} waits for a later tick`,
      );
      return false;
    }
    ctx.log.error(
      { err, blockNumber },
      `the proofs BullMQ completed still cannot be read: ${action} on what Postgres recorded`,
    );
    return true;
  }
}

/** Late blocks judged in one pass. */
export const JUDGE_BATCH = 20;

/**
 * `fabricUp`: whether the fabric answers right now (checked again before each slash).
 * `retries`: a block held because its completed proofs could not be read waits a while (1 s
 * doubling to 60 s) and the passes meanwhile go on to the blocks after it, so blocks that keep
 * failing never fill a pass. Late blocks come earliest deadline first: one held because no relay
 * was seen since its deadline holds every later deadline too.
 */
export async function enforceDeadlines(
  ctx: AggregatorContext,
  fabricUp: () => boolean = () => true,
  retries: BlockRetries = new BlockRetries(),
  batch = JUDGE_BATCH,
): Promise<number> {
  const now = ctx.now();
  const skip = retries.waiting(now);
  const late = await ctx.prisma.$queryRaw<{ number: number; deadline: bigint }[]>`
    SELECT b.number, a."proofDeadline" + b."fabricDownMs" AS deadline
    FROM "Block" b JOIN "Auction" a ON a."blockNumber" = b.number
    WHERE b.stage = ${STAGE.proving} AND b."fabricDownSince" IS NULL
      AND a."proofDeadline" + b."fabricDownMs" <= ${BigInt(now)}::bigint
      AND NOT (b.number = ANY(${skip}::integer[]))
    ORDER BY deadline, b.number LIMIT ${batch}`;
  let slashed = 0;
  // Whether a relay was there at each deadline (see the header), read once for them all.
  let relays: RelaySighting | null = null;
  if (late.length > 0) {
    relays = await pTimeout(sightRelays(ctx), { milliseconds: JUDGE_READ_TIMEOUT_MS }).catch(
      (err) => {
        ctx.log.warn({ err }, "could not read the relays' presence: proof deadlines not judged");
        return null;
      },
    );
  }
  for (const { number, deadline: due } of late) {
    if (!fabricUp()) break;
    if (relays === null) {
      // Unreadable while Redis answers: held, like an unreadable block, for JUDGE_READ_GIVE_UP_MS.
      if (BigInt(now) - due < BigInt(JUDGE_READ_GIVE_UP_MS)) continue;
    } else if (relays.seenAt === null || BigInt(relays.seenAt) < due) {
      // No relay seen able to serve since the deadline: the keeper opens an outage, or a relay's
      // next refresh shows one was there.
      continue;
    }
    if (!(await recordCompletedOrHold(ctx, number, Number(due), "judging the proof deadline"))) {
      retries.failed(number, ctx.now());
      continue;
    }
    retries.done(number);
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
  const beyondCap = new Set<string>();
  const retried = await ctx.fabric.retryFailed(
    blockNumber,
    async (id) => {
      const before = await attempts.reissues(blockNumber, id);
      const beyond = before.count >= ctx.config.reissues.max;
      if (beyond && now - before.lastMs < ctx.config.reissues.backoffMs) return false;
      if (beyond) beyondCap.add(id);
      return true;
    },
    // Counted once it is back in its queue: one another aggregator put back first is not.
    async (id) => {
      // Back in its queue already: a count that cannot be written must not stop the row's update.
      await attempts
        .reissued(blockNumber, id, now)
        .catch((err: unknown) =>
          ctx.log.warn({ err, blockNumber, jobId: id }, "a re-issue could not be counted"),
        );
      if (beyondCap.has(id)) {
        ctx.log.error(
          { blockNumber, jobId: id },
          "a job keeps failing in open proving: re-issued after the backoff; the block waits for a worker that can prove it",
        );
      }
    },
  );
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
export async function reissueInOpenProving(
  ctx: AggregatorContext,
  /**
   * Where the last pass stopped (kept by the aggregator across ticks): each pass takes the next
   * REISSUE_BATCH blocks after it, wrapping round, so blocks whose jobs wait out their backoff
   * (still failed in Postgres) cannot fill every pass and starve the blocks after them.
   */
  cursor: { after: number } = { after: -1 },
  batchSize = REISSUE_BATCH,
): Promise<void> {
  const batch = (after: number) =>
    ctx.prisma.proofJob.findMany({
      where: {
        status: "failed",
        blockNumber: { gt: after },
        block: { stage: STAGE.open_proving },
      },
      select: { blockNumber: true },
      distinct: ["blockNumber"],
      orderBy: { blockNumber: "asc" },
      take: batchSize,
    });
  let blocks = await batch(cursor.after);
  if (blocks.length === 0 && cursor.after >= 0) blocks = await batch(-1);
  for (const { blockNumber } of blocks) {
    cursor.after = blockNumber;
    try {
      await reissueFailedJobs(ctx, blockNumber);
    } catch (err) {
      ctx.log.error({ err, blockNumber }, "re-issue in open proving failed: tried again next pass");
    }
  }
  if (blocks.length < batchSize) cursor.after = -1;
}

/** Blocks looked at in one pass of reissueInOpenProving. */
export const REISSUE_BATCH = 20;
