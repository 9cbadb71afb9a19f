// Auction rules: a quote's validity against an auction, bid ordering, winner and settlement.
import { DomainError } from "./errors.ts";

export type Pricing = "first" | "second";

export interface AuctionTerms {
  blockNumber: number;
  minBond: bigint;
  maxFeeBps: number;
  biddingClosesAt: number;
  status: "open" | "committed" | "unclaimed";
}

export interface QuoteTerms {
  epochToProve: bigint;
  validUntilSlot: bigint;
  bondAmount: bigint;
  basisPointFee: number;
}

/**
 * Throws the contract's error for the first rule the quote breaks against the auction, checked
 * in a fixed order (state, then block, then price, then bond, then expiry).
 */
export function checkQuote(
  auction: AuctionTerms,
  quote: QuoteTerms,
  now: { ms: number; slot: bigint },
): void {
  if (auction.status !== "open" || now.ms >= auction.biddingClosesAt) {
    throw new DomainError(
      "AUCTION_CLOSED",
      `the auction for block ${auction.blockNumber} is closed`,
    );
  }
  if (quote.epochToProve !== BigInt(auction.blockNumber)) {
    throw new DomainError("WRONG_BLOCK", "epochToProve must equal the auctioned block number");
  }
  if (quote.basisPointFee > auction.maxFeeBps) {
    throw new DomainError(
      "FEE_ABOVE_CAP",
      `basisPointFee ${quote.basisPointFee} exceeds the auction's cap of ${auction.maxFeeBps}`,
    );
  }
  if (quote.bondAmount < auction.minBond) {
    throw new DomainError(
      "BOND_BELOW_MINIMUM",
      `bondAmount ${quote.bondAmount} is below the auction's minimum of ${auction.minBond}`,
    );
  }
  if (quote.validUntilSlot < now.slot) {
    throw new DomainError("QUOTE_EXPIRED", `the quote expired at slot ${quote.validUntilSlot}`);
  }
}

export interface RankedBid {
  basisPointFee: number;
  bondAmount: bigint;
  /** Arrival order: smaller is earlier. */
  seq: bigint;
}

/** Lowest fee first; ties go to the larger bond, then the earlier arrival. */
export function compareBids(a: RankedBid, b: RankedBid): number {
  if (a.basisPointFee !== b.basisPointFee) return a.basisPointFee - b.basisPointFee;
  if (a.bondAmount !== b.bondAmount) return a.bondAmount > b.bondAmount ? -1 : 1;
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return 0;
}

export interface AuctionOutcome<B> {
  winner: B | null;
  runnerUp: B | null;
  /** Fee the winner is paid at, in basis points (null when unclaimed). */
  settlementFeeBps: number | null;
}

export function settleAuction<B extends RankedBid>(
  bids: readonly B[],
  pricing: Pricing,
  maxFeeBps: number,
): AuctionOutcome<B> {
  if (bids.length === 0) return { winner: null, runnerUp: null, settlementFeeBps: null };
  const sorted = [...bids].sort(compareBids);
  const winner = sorted[0]!;
  const runnerUp = sorted[1] ?? null;
  // Never above the cap, whichever the pricing (valid bids are at or below it anyway).
  const settlementFeeBps = Math.min(
    pricing === "first" ? winner.basisPointFee : (runnerUp?.basisPointFee ?? maxFeeBps),
    maxFeeBps,
  );
  return { winner, runnerUp, settlementFeeBps };
}
