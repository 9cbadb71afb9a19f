// Open proving's end. A block in open proving that nobody proves within OPEN_PROVING_WINDOW_MS of
// its move there (lengthened by the fabric outages credited to it; no window ends while one is
// open: packages/core's open-proving.ts) expires: a final stage, its tree leaves Redis, nothing
// is paid and nobody is penalized, and its reward goes back to the sequencer. On chain that is
// the escrow's refundReward, owed in the same transaction as the move (the settler sends it; the
// index books the RewardRefunded it emits, from escrow:reward:<n> to the sequencer). In ledger
// mode the reward was never taken from anyone (payouts draw it from the market's rewards account
// when a block is paid), so nothing moves.
//
// The order makes "accepted" mean paid. As at a proof deadline, a block is judged only once a
// relay has been seen able to serve at or after the window's end (every relay down is an outage
// the provers did not cause). Then its tree is sealed in Redis (ProofFabric.sealBlock, atomic
// against completions): from there no job of it is leased, retried or completed, a worker's
// answer being "lease lost". Then the proofs BullMQ completed and Postgres lacks are recorded, so
// a root accepted at any time before the seal makes the block proven (and paid), never expired;
// only then is it moved. The seal decides: a sealed block whose move did not happen in the same
// pass (BullMQ unreadable, Postgres away, a restart) is moved by a later one, whatever its window
// says by then (an outage opened after the seal cost no prover anything: nothing could be proven).
import { enqueueSettlement } from "@prover-boost/chain";
import { openProvingEndsAt, openProvingExpired, STAGE } from "@prover-boost/core";
import { moveStage } from "@prover-boost/db";
import pTimeout from "p-timeout";
import type { AggregatorContext } from "./context.ts";
import { JUDGE_READ_TIMEOUT_MS, recordCompletedOrHold } from "./deadlines.ts";
import { type RelaySighting, sightRelays } from "./relays.ts";
import type { ProvingBlock } from "./tick-view.ts";

/** Whether the view has a block in open proving (the expiry pass then has something to look at). */
export function anyOpenProving(blocks: readonly ProvingBlock[], windowMs: number): boolean {
  return windowMs > 0 && blocks.some((b) => b.stage === STAGE.open_proving);
}

const openWindowOver = (b: ProvingBlock, windowMs: number, now: number) =>
  b.openedAt !== null &&
  openProvingExpired(
    { openedAt: b.openedAt, fabricDownMs: b.fabricDownMs, fabricDownSince: b.fabricDownSince },
    windowMs,
    now,
  );

/**
 * Expires the blocks of `blocks` (the tick's view) in open proving whose window is over, or that
 * an earlier pass sealed. `fabricUp`: whether the fabric answers now (nothing is sealed or
 * expired while it does not). Returns how many expired.
 */
export async function expireOpenProving(
  ctx: AggregatorContext,
  blocks: readonly ProvingBlock[],
  fabricUp: () => boolean = () => true,
): Promise<number> {
  const windowMs = ctx.config.openProvingWindowMs;
  const open = blocks.filter((b) => b.stage === STAGE.open_proving);
  if (windowMs <= 0 || open.length === 0) return 0;
  const sealed = await pTimeout(ctx.fabric.sealedOf(open.map((b) => b.number)), {
    milliseconds: JUDGE_READ_TIMEOUT_MS,
  });
  let expired = 0;
  // Whether a relay was there at each window's end, read once for them all.
  let relays: RelaySighting | null = null;
  for (const b of open) {
    if (!fabricUp()) break;
    const now = ctx.now();
    const endsAt =
      b.openedAt === null
        ? null
        : openProvingEndsAt(
            { openedAt: b.openedAt, fabricDownMs: b.fabricDownMs, fabricDownSince: null },
            windowMs,
          );
    if (endsAt === null) continue;
    if (!sealed.has(b.number)) {
      if (!openWindowOver(b, windowMs, now)) continue;
      relays ??= await pTimeout(sightRelays(ctx), { milliseconds: JUDGE_READ_TIMEOUT_MS });
      // No relay seen able to serve since the window's end: nobody could have proven it up to
      // there (a relay's next refresh shows one was there).
      const { seenAt } = relays as RelaySighting;
      if (seenAt === null || BigInt(seenAt) < endsAt) continue;
      await pTimeout(ctx.fabric.sealBlock(b.number), { milliseconds: JUDGE_READ_TIMEOUT_MS });
    }
    const since = Math.min(Number(endsAt), now);
    if (!(await recordCompletedOrHold(ctx, b.number, since, "expiring the block"))) continue;
    const moved = await ctx.prisma.$transaction(async (tx) => {
      // Locked: a root recorded meanwhile made it proven (and it is paid instead).
      await tx.$queryRaw`SELECT number FROM "Block" WHERE number = ${b.number} FOR UPDATE`;
      if (!(await moveStage(tx, b.number, STAGE.open_proving, STAGE.expired, now))) return false;
      if (ctx.config.collateral === "chain") {
        await enqueueSettlement(tx, { kind: "refund", blockNumber: b.number }, now);
      }
      return true;
    });
    if (!moved) continue;
    expired++;
    // Relays stop offering its jobs; its queues and books leave Redis.
    await ctx.fabric.announceBlocks().catch(() => {});
    await ctx.fabric.retireSealedBlock(b.number).catch(() => {});
    ctx.log.warn(
      { blockNumber: b.number, openProvingWindowMs: windowMs },
      "open proving over with no proof of the block: expired, its reward owed back to the sequencer",
    );
  }
  return expired;
}
