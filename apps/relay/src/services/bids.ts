// Submitting, replacing and cancelling bids. The collateral reservation commits in the same
// Postgres transaction as the bid row (see packages/db ledger.ts for why the atomic step lives
// there). The auction row is read FOR SHARE so the aggregator's close (which updates it) waits
// for in-flight bids: a bid is either seen by the close or refused as closed, never lost.
// Submissions are written in batches by one SQL function (see the pb_submit_bids migration).
import { bidCancellationMessage, quoteMessage } from "@prover-boost/contract";
import {
  checkQuote,
  DomainError,
  hashBidCancellation,
  hashQuote,
  recoverSigner,
  slotAt,
} from "@prover-boost/core";
import {
  accounts,
  applyMovement,
  type BidWriteOutcome,
  submitBidBatch,
  type Tx,
} from "@prover-boost/db";
import type { RelayContext } from "../context.ts";
import { withProvenIdentityCount } from "../identity-limits.ts";
import type { CachedTerms, PendingBid, QuoteRequest } from "./bid-ingest.ts";
import { checkIssuedAt } from "./sessions.ts";

export type { CachedTerms, PendingBid, QuoteRequest } from "./bid-ingest.ts";

interface AuctionRow {
  status: string;
  minBond: string;
  maxFeeBps: number;
  biddingClosesAt: string;
}

async function lockAuctionShared(tx: Tx, blockNumber: number): Promise<AuctionRow | null> {
  const rows = await tx.$queryRaw<AuctionRow[]>`
    SELECT status, "minBond"::text AS "minBond", "maxFeeBps", "biddingClosesAt"::text AS "biddingClosesAt"
    FROM "Auction" WHERE "blockNumber" = ${blockNumber} FOR SHARE`;
  return rows[0] ?? null;
}

/** Serializes a prover's bid operations across relay processes (see pb_lock_prover). */
async function lockProver(tx: Tx, prover: string): Promise<void> {
  await tx.$queryRaw`SELECT pb_lock_prover(${prover})::text AS locked`;
}

const MAX_CACHED_AUCTIONS = 10_000;

async function auctionTerms(ctx: RelayContext, blockNumber: number): Promise<CachedTerms> {
  const cached = ctx.bidIngest.terms.get(blockNumber);
  if (cached) return cached;
  const auction = await ctx.prisma.auction.findUnique({
    where: { blockNumber },
    select: { status: true, minBond: true, maxFeeBps: true, biddingClosesAt: true },
  });
  if (!auction) {
    throw new DomainError("AUCTION_NOT_FOUND", `no auction for block ${blockNumber}`);
  }
  const terms = {
    blockNumber,
    minBond: BigInt(auction.minBond.toFixed()),
    maxFeeBps: auction.maxFeeBps,
    biddingClosesAt: Number(auction.biddingClosesAt),
  };
  if (auction.status !== "open") {
    throw new DomainError("AUCTION_CLOSED", `the auction for block ${blockNumber} is closed`);
  }
  if (ctx.bidIngest.terms.size >= MAX_CACHED_AUCTIONS) ctx.bidIngest.terms.clear();
  ctx.bidIngest.terms.set(blockNumber, terms);
  return terms;
}

/** Writes a batch of bids in one statement (pb_submit_bids holds every rule that needs state). */
export function writeBidBatch(ctx: RelayContext, batch: PendingBid[]): Promise<BidWriteOutcome[]> {
  return submitBidBatch(
    ctx.prisma,
    batch.map((b) => ({
      id: b.id,
      blockNumber: b.quote.epochToProve,
      prover: b.quote.prover,
      validUntilSlot: BigInt(b.quote.validUntilSlot),
      bondAmount: b.quote.bondAmount,
      basisPointFee: b.quote.basisPointFee,
      signature: b.signature,
    })),
    ctx.now(),
  );
}

function outcomeToResult(pending: PendingBid, row: BidWriteOutcome, ctx: RelayContext) {
  switch (row.outcome) {
    case "accepted":
      return { bidId: pending.id, status: "accepted" as const, replay: false };
    case "replay":
      return { bidId: pending.id, status: "accepted" as const, replay: true };
    case "AUCTION_NOT_FOUND":
      ctx.bidIngest.terms.delete(pending.quote.epochToProve);
      throw new DomainError(
        "AUCTION_NOT_FOUND",
        `no auction for block ${pending.quote.epochToProve}`,
      );
    case "AUCTION_CLOSED":
      ctx.bidIngest.terms.delete(pending.quote.epochToProve);
      throw new DomainError(
        "AUCTION_CLOSED",
        `the auction for block ${pending.quote.epochToProve} is closed`,
      );
    case "BID_SUPERSEDED":
      throw new DomainError(
        "BID_SUPERSEDED",
        "this quote was replaced, cancelled or unfunded; sign a new one",
      );
    case "INSUFFICIENT_COLLATERAL":
      throw new DomainError(
        "INSUFFICIENT_COLLATERAL",
        // No amount: whoever submits a prover's signed quote must not learn from the answer
        // how much of its collateral its other live (sealed) bids hold.
        "the prover's free collateral (after its live bids and locked bonds) is below the bond",
      );
    default:
      throw new Error(`unexpected bid outcome ${(row as { outcome: string }).outcome}`);
  }
}

/**
 * Accepts a signed quote. The pure checks (signature, the auction's immutable terms, expiry) run
 * here; the rest runs in Postgres in a batch with the other bids arriving meanwhile (group
 * commit), so the answer comes after the bid and its reservation are durable.
 */
export async function submitBid(ctx: RelayContext, quote: QuoteRequest, signature: string) {
  const digest = hashQuote(ctx.domain, quoteMessage(quote));
  const signer = await recoverSigner(digest, signature, ctx.signatureBackend);
  if (signer !== quote.prover) {
    throw new DomainError("BAD_SIGNATURE", "the quote is not signed by its prover");
  }
  const terms = await auctionTerms(ctx, quote.epochToProve);
  // Chain mode: collateral is only what the index of a live, unchanged L1 says it is.
  ctx.escrowIndex?.assertReady();
  const now = ctx.now();
  checkQuote(
    { ...terms, status: "open" },
    {
      epochToProve: BigInt(quote.epochToProve),
      validUntilSlot: BigInt(quote.validUntilSlot),
      bondAmount: quote.bondAmount,
      basisPointFee: quote.basisPointFee,
    },
    { ms: now, slot: slotAt(ctx.clock, now) },
  );
  // The per-prover limit counts the recovered signer, and only for a quote that could win an
  // open auction: forged quotes naming a rival, and the rival's old public quotes, spend nothing
  // of the rival's allowance. A bid the write still refuses (collateral, superseded, closed
  // meanwhile) gives its count back.
  const limit = {
    max: ctx.settings.rateLimits.perIp === 0 ? 0 : ctx.settings.rateLimits.perProver,
    windowMs: ctx.settings.rateLimits.windowMs,
  };
  return withProvenIdentityCount(ctx, "bids", signer, limit, async () => {
    const pending: PendingBid = { id: digest, quote, signature };
    const row = await ctx.bidIngest.batcher.submit(pending);
    return outcomeToResult(pending, row, ctx);
  });
}

/**
 * Withdraws exactly the bid a signed BidCancellation names, once. The cancellation is bound to
 * the bid (its id is the quote's digest), so it cannot withdraw a later bid of the same prover;
 * a replay finds the bid already cancelled (409 AUTHORIZATION_REPLAYED); an issuedAt ahead of
 * the relay's clock, by any amount, is refused (401 ISSUED_IN_FUTURE). Every refusal changes
 * nothing.
 */
export async function cancelBid(
  ctx: RelayContext,
  blockNumber: number,
  prover: `0x${string}`,
  body: { bidId: `0x${string}`; issuedAt: number; signature: string },
) {
  const digest = hashBidCancellation(
    ctx.domain,
    bidCancellationMessage({ bidId: body.bidId, prover, issuedAt: body.issuedAt }),
  );
  const signer = await recoverSigner(digest, body.signature, ctx.signatureBackend);
  if (signer !== prover)
    throw new DomainError("BAD_SIGNATURE", "the cancellation is not signed by the prover");
  checkIssuedAt(ctx, body.issuedAt, "cancellation", 0);
  const now = ctx.now();
  return ctx.prisma.$transaction(async (tx) => {
    const auction = await lockAuctionShared(tx, blockNumber);
    if (!auction) throw new DomainError("AUCTION_NOT_FOUND", `no auction for block ${blockNumber}`);
    if (auction.status !== "open" || now >= Number(auction.biddingClosesAt)) {
      throw new DomainError("AUCTION_CLOSED", `the auction for block ${blockNumber} is closed`);
    }
    await lockProver(tx, prover);
    const bid = await tx.bid.findUnique({ where: { id: body.bidId } });
    if (!bid || bid.prover !== prover || bid.blockNumber !== blockNumber) {
      throw new DomainError(
        "BID_NOT_FOUND",
        `${body.bidId} is not a bid of ${prover} for block ${blockNumber}`,
      );
    }
    if (bid.status === "cancelled") {
      throw new DomainError("AUTHORIZATION_REPLAYED", `bid ${bid.id} is already cancelled`);
    }
    if (bid.status !== "active") {
      throw new DomainError("BID_NOT_FOUND", `bid ${bid.id} is no longer open (${bid.status})`);
    }
    await tx.bid.update({ where: { id: bid.id }, data: { status: "cancelled" } });
    const bond = BigInt(bid.bondAmount.toFixed());
    await applyMovement(tx, {
      kind: "release",
      legs: [
        { account: accounts.reserved(prover), amount: -bond },
        { account: accounts.available(prover), amount: bond },
      ],
      blockNumber,
      ref: bid.id,
      nowMs: now,
    });
    return { bidId: bid.id, status: "cancelled" as const };
  });
}
