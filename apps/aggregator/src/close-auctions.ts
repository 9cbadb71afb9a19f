// Closing auctions whose bidding time has come: pick the winner by the core rules, turn its
// reservation into a locked bond, release every other reservation, all in one transaction.
// A quote whose validUntilSlot is before the slot the auction closes in cannot win (Aztec only
// accepts a quote valid when claimed): it is marked `expired` and released like a losing bid.
import { enqueueSettlement } from "@prover-boost/chain";
import { eligibleAtClose, STAGE, settleAuction, slotAt } from "@prover-boost/core";
import { accounts, applyMovement, moveStage } from "@prover-boost/db";
import type { AggregatorContext } from "./context.ts";

export async function closeDueAuctions(ctx: AggregatorContext): Promise<number> {
  const now = ctx.now();
  const due = await ctx.prisma.auction.findMany({
    where: { status: "open", biddingClosesAt: { lte: BigInt(now) } },
    select: { blockNumber: true },
    orderBy: { biddingClosesAt: "asc" },
    take: 50,
  });
  for (const { blockNumber } of due) await closeAuction(ctx, blockNumber, now);
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
      await tx.bid.update({ where: { id: bid.id }, data: { status } });
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
