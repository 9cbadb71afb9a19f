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
// against completions): from there no job of it is leased and no result accepted, a worker's
// answer being "lease lost". Then the proofs BullMQ completed and Postgres lacks are recorded, so
// a root accepted at any time before the seal makes the block proven (and paid), never expired;
// only then is it moved. A block the move then finds changed (an outage opened meanwhile) stays
// in open proving, sealed, and is judged again; the keeper may rebuild its tree meanwhile.
import { enqueueSettlement } from "@prover-boost/chain";
import { openProvingEndsAt, openProvingExpired, STAGE } from "@prover-boost/core";
import { moveStage } from "@prover-boost/db";
import pTimeout from "p-timeout";
import type { AggregatorContext } from "./context.ts";
import { JUDGE_READ_TIMEOUT_MS, recordCompletedOrHold } from "./deadlines.ts";
import { type RelaySighting, sightRelays } from "./relays.ts";
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
  // Whether a relay was there at each window's end, read once for them all.
  let relays: RelaySighting | null = null;
  for (const b of blocks) {
    if (!fabricUp()) break;
    const now = ctx.now();
    if (!openWindowOver(b, windowMs, now)) continue;
    const endsAt = openProvingEndsAt(
      { openedAt: b.openedAt!, fabricDownMs: b.fabricDownMs, fabricDownSince: null },
      windowMs,
    )!;
    relays ??= await pTimeout(sightRelays(ctx), { milliseconds: JUDGE_READ_TIMEOUT_MS });
    // No relay seen able to serve since the window's end: nobody could have proven it up to
    // there (a relay's next refresh shows one was there).
    const { seenAt } = relays as RelaySighting;
    if (seenAt === null || BigInt(seenAt) < endsAt) continue;
    await pTimeout(ctx.fabric.sealBlock(b.number), { milliseconds: JUDGE_READ_TIMEOUT_MS });
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
    await ctx.fabric.retireSealedBlock(b.number).catch(() => {});
    ctx.log.warn(
      { blockNumber: b.number, openProvingWindowMs: windowMs },
      "open proving over with no proof of the block: expired, its reward owed back to the sequencer",
    );
  }
  return expired;
}
