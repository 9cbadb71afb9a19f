// Closing auctions whose bidding time has come: pick the winner by the core rules, turn its
// reservation into a locked bond, release every other reservation, all in one transaction.
// A quote whose validUntilSlot is before the slot the auction closes in cannot win (Aztec only
// accepts a quote valid when claimed): it is marked `expired` and released like a losing bid.

import { enqueueSettlement } from "@prover-boost/chain";
import { eligibleAtClose, STAGE, settleAuction, slotAt } from "@prover-boost/core";
import { accounts, applyMovements, moveStage } from "@prover-boost/db";
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

/**
 * Closes one auction in one transaction whose work does not grow per bid in round trips or
 * locks: a sequencer that sets no minimum bond lets throwaway keys place any number of zero-bond
 * bids, and the close must still end. Three set-wise statements whatever the number of bids:
 * the bidders' balance rows locked, the winner and runner-up read, every live bid ended; then
 * one batch of ledger movements, for the bids that reserved anything.
 */
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
    // The close slot is that of biddingClosesAt, not of whenever this tick runs, so the outcome
    // does not depend on how late the aggregator gets to it.
    const closeSlot = slotAt(ctx.config.slots, Number(auction.biddingClosesAt));
    // Every bidder's available balance row, in account order (the order every multi-prover
    // ledger writer locks balances in), before the bids are read: a writer that ends a prover's
    // live bids (cancelLiveBids, the escrow index taking collateral back; it takes no auction
    // lock) locks that row first, so it has either committed, and its bids are not read as live,
    // or waits for this close; and it cannot hold one bidder's bid while waiting for another's
    // row this close holds. Row locks, not the shared lock table; a throwaway key that never
    // deposited has no row to lock (and no collateral for the escrow index to take back).
    await tx.$queryRaw`
      SELECT account FROM "AccountBalance" WHERE account IN (
        SELECT 'prover:' || lower(prover) || ':available' FROM "Bid"
        WHERE "blockNumber" = ${blockNumber} AND status = 'active')
      ORDER BY account FOR UPDATE`;
    // The two best eligible bids, in compareBids' order: lowest fee, larger bond, earlier.
    const best = (
      await tx.$queryRaw<
        { id: string; prover: string; fee: number; bond: string; seq: bigint; until: string }[]
      >`
        SELECT id, prover, "basisPointFee" AS fee, "bondAmount"::text AS bond, seq,
          "validUntilSlot"::text AS until
        FROM "Bid"
        WHERE "blockNumber" = ${blockNumber} AND status = 'active'
          AND "validUntilSlot" >= ${closeSlot.toString()}::numeric
        ORDER BY "basisPointFee", "bondAmount" DESC, seq LIMIT 2`
    ).map((b) => ({
      id: b.id,
      prover: b.prover,
      basisPointFee: b.fee,
      bondAmount: BigInt(b.bond),
      seq: b.seq,
      validUntilSlot: BigInt(b.until),
    }));
    const { eligible } = eligibleAtClose(best, closeSlot);
    const outcome = settleAuction(eligible, ctx.config.auctionPricing, auction.maxFeeBps);
    const winnerId = outcome.winner?.id ?? "";
    const runnerUpId = outcome.runnerUp?.id ?? "";
    // Every live bid ends at once: the winner won, a quote expired before the close slot is
    // `expired`, the rest lost. Only the bids that reserved a bond come back (the flood's zero
    // bonds move nothing), and the two best.
    const ended = await tx.$queryRaw<
      { id: string; prover: string; bond: string; status: string }[]
    >`
      WITH ended AS (
        UPDATE "Bid" SET status = CASE
          WHEN id = ${winnerId} THEN 'won'
          WHEN "validUntilSlot" < ${closeSlot.toString()}::numeric THEN 'expired'
          ELSE 'lost' END
        WHERE "blockNumber" = ${blockNumber} AND status = 'active'
        RETURNING id, prover, "bondAmount", status)
      SELECT id, prover, "bondAmount"::text AS bond, status FROM ended
      WHERE "bondAmount" <> 0 OR id IN (${winnerId}, ${runnerUpId})`;
    // The winner and runner-up (whose fee may set the price) were live when read; one ended
    // meanwhile (a bidder with no balance row to lock above) sends the close round again.
    for (const id of [winnerId, runnerUpId]) {
      if (id !== "" && !ended.some((b) => b.id === id)) {
        throw new Error(`bid ${id} ended while its auction closed`);
      }
    }
    // Provers in account order, as the balance rows were locked.
    ended.sort((a, b) => {
      const x = accounts.available(a.prover);
      const y = accounts.available(b.prover);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    await applyMovements(
      tx,
      ended.map((bid) => {
        const bond = BigInt(bid.bond);
        const won = bid.status === "won";
        return {
          kind: won ? ("lock" as const) : ("release" as const),
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
        };
      }),
    );
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
