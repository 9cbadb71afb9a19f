// Open proving's end. A block in open proving that nobody proves within OPEN_PROVING_WINDOW_MS of
// its move there (lengthened by the fabric outages credited to it; no window ends while one is
// open: packages/core's open-proving.ts) expires: a final stage, its tree leaves Redis, nothing
// is paid and nobody is penalized, and its reward goes back to the sequencer. On chain that is
// the escrow's refundReward, owed in the same transaction as the move (the settler sends it; the
// index books the RewardRefunded it emits, from escrow:reward:<n> to the sequencer). In ledger
// mode the reward was never taken from anyone (payouts draw it from the market's rewards account
// when a block is paid), so nothing moves.
//
// The order makes "accepted" mean paid. Whether the window is over is decided on the block's row
// under its lock (the keeper credits outages under the same lock), and, as at a proof deadline,
// only once a relay has been seen able to serve at or after the window's end (every relay down
// is an outage the provers did not cause). Then, still under that lock, its tree is sealed in
// Redis (ProofFabric.sealBlock, atomic against completions): from there no job of it is leased,
// retried or completed, a worker's answer being "lease lost". Then the proofs BullMQ completed
// and Postgres lacks are recorded, so a root accepted at any time before the seal makes the block
// proven (and paid), never expired; only then is it moved, if it is still sealed (a tree the
// keeper rebuilt meanwhile is not: the block is judged again). The seal decides: a sealed block
// whose move did not happen in the same pass (BullMQ unreadable, Postgres away, a restart) is
// moved by a later one, whatever its window says by then (an outage opened after the seal cost
// no prover anything: nothing could be proven); what BullMQ completed is waited for up to
// JUDGE_READ_GIVE_UP_MS from the seal.
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
  // Whether a relay was there at each window's end, read once for them all (at the first block
  // whose window is over).
  let sighting: Promise<RelaySighting> | null = null;
  const relays = () => {
    sighting ??= pTimeout(sightRelays(ctx), { milliseconds: JUDGE_READ_TIMEOUT_MS });
    return sighting;
  };
  for (const b of open) {
    if (!fabricUp()) break;
    try {
      if (await expireOne(ctx, b, windowMs, sealed.get(b.number), relays)) expired++;
    } catch (err) {
      // One block that cannot be judged now (a lock held long, Redis or Postgres away) does not
      // hold up the others: it is judged again next tick.
      ctx.log.warn(
        { err, blockNumber: b.number },
        "open-proving expiry: block left for a later tick",
      );
    }
  }
  return expired;
}

/** A move or seal's transaction: its lock wait, a Redis call or two, and room to spare. */
const TX_OPTIONS = { maxWait: 10_000, timeout: 30_000 };

/** The Postgres lock wait a move or seal takes at most (then the block waits for a later tick). */
const LOCK_WAIT_MS = 5000;

/**
 * Judges one block in open proving (`sealedAt`: when an earlier pass sealed it, if one did):
 * seals it if its window is over, records what BullMQ completed, and moves it to expired.
 * Returns whether it expired.
 */
async function expireOne(
  ctx: AggregatorContext,
  b: ProvingBlock,
  windowMs: number,
  sealedBefore: number | undefined,
  relays: () => Promise<RelaySighting>,
): Promise<boolean> {
  let sealedAt = sealedBefore;
  if (sealedAt === undefined) {
    // Only worth a closer look once the tick's view says the window is over.
    if (!openWindowOver(b, windowMs, ctx.now())) return false;
    sealedAt = await sealIfOver(ctx, b.number, windowMs, await relays());
    if (sealedAt === undefined) return false;
  }
  if (!(await recordCompletedOrHold(ctx, b.number, sealedAt, "expiring the block"))) return false;
  const now = ctx.now();
  const moved = await ctx.prisma.$transaction(async (tx) => {
    // Locked: a root recorded meanwhile made it proven (it is paid instead), and a tree rebuilt
    // meanwhile (rebuild.ts, under the same lock) is no longer sealed: judged again.
    await tx.$executeRawUnsafe(`SET LOCAL lock_timeout = ${LOCK_WAIT_MS}`);
    await tx.$queryRaw`SELECT number FROM "Block" WHERE number = ${b.number} FOR UPDATE`;
    const still = await pTimeout(ctx.fabric.sealedOf([b.number]), {
      milliseconds: JUDGE_READ_TIMEOUT_MS,
    });
    if (!still.has(b.number)) return false;
    if (!(await moveStage(tx, b.number, STAGE.open_proving, STAGE.expired, now))) return false;
    // An outage still open (one that began after the seal) ends with the block: final, it has no
    // clock left to hold, and its views should not show one paused.
    await tx.$executeRaw`UPDATE "Block" SET "fabricDownSince" = NULL WHERE number = ${b.number}`;
    if (ctx.config.collateral === "chain") {
      await enqueueSettlement(tx, { kind: "refund", blockNumber: b.number }, now);
    }
    return true;
  }, TX_OPTIONS);
  if (!moved) return false;
  // Relays stop offering its jobs; its queues and books leave Redis.
  await ctx.fabric.announceBlocks().catch(() => {});
  await ctx.fabric.retireBlock(b.number).catch(() => {});
  ctx.log.warn(
    { blockNumber: b.number, openProvingWindowMs: windowMs },
    "open proving over with no proof of the block: expired, its reward owed back to the sequencer",
  );
  return true;
}

/**
 * Seals block `n`'s tree if its open proving is over, decided on the block's row as it is now,
 * under its lock (the keeper credits an outage to it under the same lock, which lengthens the
 * window), and once a relay was seen able to serve at or after the window's end (nobody could
 * have proven it up to there otherwise; a relay's next refresh shows one was there). Returns
 * when it was sealed, or undefined.
 */
async function sealIfOver(
  ctx: AggregatorContext,
  n: number,
  windowMs: number,
  relays: RelaySighting,
): Promise<number | undefined> {
  return ctx.prisma.$transaction(async (tx) => {
    await tx.$executeRawUnsafe(`SET LOCAL lock_timeout = ${LOCK_WAIT_MS}`);
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
      FROM "Block" WHERE number = ${n} FOR UPDATE`;
    if (row?.stage !== STAGE.open_proving || row.openedAt === null) return undefined;
    const block = {
      openedAt: row.openedAt,
      fabricDownMs: row.fabricDownMs,
      fabricDownSince: row.fabricDownSince,
    };
    const now = ctx.now();
    if (!openProvingExpired(block, windowMs, now)) return undefined;
    const endsAt = openProvingEndsAt(block, windowMs)!;
    if (relays.seenAt === null || BigInt(relays.seenAt) < endsAt) return undefined;
    await pTimeout(ctx.fabric.sealBlock(n, now), { milliseconds: JUDGE_READ_TIMEOUT_MS });
    return now;
  }, TX_OPTIONS);
}
