// Closing auctions whose bidding time has come: pick the winner by the core rules, turn its
// reservation into a locked bond, release every other reservation, all in one transaction.
// A quote whose validUntilSlot is before the slot the auction closes in cannot win (Aztec only
// accepts a quote valid when claimed): it is marked `expired` and released like a losing bid.

import { enqueueSettlement } from "@prover-boost/chain";
import { eligibleAtClose, STAGE, settleAuction, slotAt } from "@prover-boost/core";
import { accounts, applyMovement, moveStage } from "@prover-boost/db";
import { BlockRetries } from "./block-retries.ts";
import type { AggregatorContext } from "./context.ts";

/**
 * `retries`: an auction whose close failed waits a while (1 s doubling to 60 s), and the passes
 * meanwhile go on to the auctions after it, so auctions that keep failing cannot fill a pass.
 */
export async function closeDueAuctions(
  ctx: AggregatorContext,
  retries: BlockRetries = new BlockRetries(),
): Promise<number> {
  const now = ctx.now();
  const skip = retries.waiting(now);
  const due = await ctx.prisma.auction.findMany({
    where: {
      status: "open",
      biddingClosesAt: { lte: BigInt(now) },
      ...(skip.length > 0 ? { blockNumber: { notIn: skip } } : {}),
    },
    select: { blockNumber: true },
    orderBy: { biddingClosesAt: "asc" },
    take: 50,
  });
  // One auction that cannot close (an error on every try) does not hold up the others, nor the
  // rest of the tick (fan-out, deadlines, payouts): it is logged and tried again next tick.
  for (const { blockNumber } of due) {
    try {
      await closeAuction(ctx, blockNumber, now);
      retries.done(blockNumber);
    } catch (err) {
      const retryInMs = retries.failed(blockNumber, ctx.now());
      ctx.log.error({ err, blockNumber, retryInMs }, "auction close failed");
    }
  }
  return due.length;
}

export async function closeAuction(ctx: AggregatorContext, blockNumber: number, now: number) {
  const closed = await ctx.prisma.$transaction(async (tx) => {
    // The exclusive row lock waits for in-flight bids (they hold FOR SHARE) and stops new ones.
    const locked = await tx.$queryRaw<{ status: string }[]>`
      SELECT status FROM "Auction" WHERE "blockNumber" = ${blockNumber} FOR UPDATE`;
    if (locked[0]?.status !== "open") return null;
    // Not the block's transactions (thousands of hashes): only what closing needs.
    const auction = await tx.auction.findUniqueOrThrow({
      where: { blockNumber },
      select: { biddingClosesAt: true, maxFeeBps: true },
    });
    // The bidders' market locks, in the order bid writes take them (pb_submit_bids), before their
    // bids are read: a writer that ends a prover's live bids (the escrow index's cancelLiveBids,
    // which takes no auction lock) has then either committed, and its bids are not read as
    // active, or waits for this close.
    await tx.$queryRaw`
      SELECT pb_lock_prover(p)::text AS locked FROM (
        SELECT DISTINCT prover AS p FROM "Bid"
        WHERE "blockNumber" = ${blockNumber} AND status = 'active' ORDER BY 1) AS s`;
    const bids = (await tx.bid.findMany({ where: { blockNumber, status: "active" } })).map((b) => ({
      ...b,
      validUntilSlot: BigInt(b.validUntilSlot.toFixed()),
    }));
    // The close slot is that of biddingClosesAt, not of whenever this tick runs, so the outcome
    // does not depend on how late the aggregator gets to it.
    const closeSlot = slotAt(ctx.config.slots, Number(auction.biddingClosesAt));
    const { eligible } = eligibleAtClose(bids, closeSlot);
    const outcome = settleAuction(
      eligible.map((b) => ({ ...b, bondAmount: BigInt(b.bondAmount.toFixed()) })),
      ctx.config.auctionPricing,
      auction.maxFeeBps,
    );
    // Provers in account order, the order every multi-prover ledger writer locks balances in
    // (bid batches do the same), so they cannot deadlock.
    bids.sort((a, b) => {
      const x = accounts.available(a.prover);
      const y = accounts.available(b.prover);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    for (const bid of bids) {
      const bond = BigInt(bid.bondAmount.toFixed());
      const won = bid.id === outcome.winner?.id;
      const status = won ? "won" : bid.validUntilSlot < closeSlot ? "expired" : "lost";
      const claimed = await tx.bid.updateMany({
        where: { id: bid.id, status: "active" },
        data: { status },
      });
      if (claimed.count !== 1) throw new Error(`bid ${bid.id} changed while its auction closed`);
      await applyMovement(tx, {
        kind: won ? "lock" : "release",
        legs: [
          { account: accounts.reserved(bid.prover), amount: -bond },
          {
            account: won ? accounts.locked(bid.prover) : accounts.available(bid.prover),
            amount: bond,
          },
        ],
        blockNumber,
        ref: bid.id,
        nowMs: now,
      });
    }
    const winner = outcome.winner;
    if (winner && ctx.config.collateral === "chain") {
      await enqueueSettlement(
        tx,
        { kind: "lock", blockNumber, prover: winner.prover, amount: winner.bondAmount },
        now,
      );
    }
    await tx.auction.update({
      where: { blockNumber },
      data: {
        status: winner ? "committed" : "unclaimed",
        winnerBidId: winner?.id ?? null,
        settlementFeeBps: outcome.settlementFeeBps,
        closedAt: BigInt(now),
      },
      select: { blockNumber: true },
    });
    const to = winner ? STAGE.committed : STAGE.unclaimed;
    await moveStage(tx, blockNumber, STAGE.auction_open, to, now, {
      winner: winner?.prover ?? null,
      feeBps: outcome.settlementFeeBps ?? auction.maxFeeBps,
      bondAmount: winner ? winner.bondAmount.toString() : null,
    });
    return {
      outcome: winner ? "committed" : "unclaimed",
      closesAt: Number(auction.biddingClosesAt),
    };
  });
  if (!closed) return;
  ctx.metrics.auctionsClosed.inc({ outcome: closed.outcome });
  ctx.metrics.closeLag.observe(Math.max(0, now - closed.closesAt) / 1000);
  ctx.log.info({ blockNumber }, "auction closed");
}
