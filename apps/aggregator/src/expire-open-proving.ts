// Open proving's end. A block in open proving that nobody proves within OPEN_PROVING_WINDOW_MS of
// its move there (lengthened by the fabric outages credited to it; no window ends while one is
// open: packages/core's open-proving.ts) expires: a final stage, its tree leaves Redis (leases
// still held on it end without a penalty: their jobs are gone, so nothing lapses), and its reward
// goes back to the sequencer. On chain that is the escrow's refundReward, owed in the same
// transaction as the move (the settler sends it; the index books the RewardRefunded it emits,
// from escrow:reward:<n> to the sequencer). In ledger mode the reward was never taken from anyone
// (payouts draw it from the market's rewards account when a block is paid), so nothing moves.
//
// As at a proof deadline, the proofs BullMQ completed and Postgres lacks are recorded first: a
// root accepted by the window's end makes the block proven (and paid), not expired. One accepted
// after the end, before this tick saw it, does not save the block: the window had ended.
import { enqueueSettlement } from "@prover-boost/chain";
import { openProvingEndsAt, openProvingExpired, STAGE } from "@prover-boost/core";
import { moveStage } from "@prover-boost/db";
import type { AggregatorContext } from "./context.ts";
import { recordCompletedOrHold } from "./deadlines.ts";
import type { ProvingBlock } from "./tick-view.ts";

/** Whether some block of the view is in open proving past its window (a pass has work). */
export function anyOpenProvingOver(
  blocks: readonly ProvingBlock[],
  windowMs: number,
  now: number,
): boolean {
  return blocks.some((b) => openWindowOver(b, windowMs, now));
}

const openWindowOver = (b: ProvingBlock, windowMs: number, now: number) =>
  b.stage === STAGE.open_proving &&
  b.openedAt !== null &&
  openProvingExpired(
    { openedAt: b.openedAt, fabricDownMs: b.fabricDownMs, fabricDownSince: b.fabricDownSince },
    windowMs,
    now,
  );

/**
 * Expires the blocks of `blocks` (the tick's view) whose open proving is over. `fabricUp`:
 * whether the fabric answers now (nothing expires while it does not). Returns how many expired.
 */
export async function expireOpenProving(
  ctx: AggregatorContext,
  blocks: readonly ProvingBlock[],
  fabricUp: () => boolean = () => true,
): Promise<number> {
  const windowMs = ctx.config.openProvingWindowMs;
  let expired = 0;
  for (const b of blocks) {
    if (!fabricUp()) break;
    const now = ctx.now();
    if (!openWindowOver(b, windowMs, now)) continue;
    const endsAt = openProvingEndsAt(
      { openedAt: b.openedAt!, fabricDownMs: b.fabricDownMs, fabricDownSince: null },
      windowMs,
    )!;
    if (!(await recordCompletedOrHold(ctx, b.number, Number(endsAt), "expiring the block"))) {
      continue;
    }
    const moved = await ctx.prisma.$transaction(async (tx) => {
      // Locked, and read again: a root recorded meanwhile made it proven; an outage opened
      // meanwhile (rebuild.ts) holds it.
      const [row] = await tx.$queryRaw<
        {
          stage: string;
          openedAt: bigint | null;
          fabricDownMs: bigint;
          fabricDownSince: bigint | null;
        }[]
      >`
        SELECT stage, (stages->>${STAGE.open_proving})::bigint AS "openedAt", "fabricDownMs",
          "fabricDownSince"
        FROM "Block" WHERE number = ${b.number} FOR UPDATE`;
      if (
        !row ||
        row.stage !== STAGE.open_proving ||
        row.openedAt === null ||
        !openProvingExpired(
          {
            openedAt: row.openedAt,
            fabricDownMs: row.fabricDownMs,
            fabricDownSince: row.fabricDownSince,
          },
          windowMs,
          now,
        )
      ) {
        return false;
      }
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
    await ctx.fabric.retireBlock(b.number).catch(() => {});
    ctx.log.warn(
      { blockNumber: b.number, openProvingWindowMs: windowMs },
      "open proving over with no proof of the block: expired, its reward owed back to the sequencer",
    );
  }
  return expired;
}
