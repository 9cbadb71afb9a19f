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
 * in a fixed order (state, then block, then price, then bond and its bound, then expiry).
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
  if (quote.bondAmount > MAX_AMOUNT_WEI) {
    throw new DomainError(
      "AMOUNT_TOO_LARGE",
      `bondAmount ${quote.bondAmount} exceeds the largest amount accepted, ${MAX_AMOUNT_WEI} wei`,
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

/**
 * The bids that may still win when an auction closes at `closeSlot`: a quote is claimed at
 * close, and Aztec only accepts a quote that is valid when it is claimed, so a quote whose
 * `validUntilSlot` is before the close slot is out (the next valid bid wins instead).
 */
export function eligibleAtClose<B extends { validUntilSlot: bigint }>(
  bids: readonly B[],
  closeSlot: bigint,
): { eligible: B[]; expired: B[] } {
  const eligible: B[] = [];
  const expired: B[] = [];
  for (const b of bids) (b.validUntilSlot >= closeSlot ? eligible : expired).push(b);
  return { eligible, expired };
}

/**
 * Largest amount (wei) any single deposit, bond, minimum bond or block reward may be: 10^36 wei
 * (10^18 ether, far beyond any real supply). Larger amounts are refused with AMOUNT_TOO_LARGE.
 */
export const MAX_AMOUNT_WEI = 10n ** 36n;

/**
 * Most that may ever flow into the ledger from each external source (all deposits together, all
 * block rewards together): 10^77 wei. Every guarded account holds part of what came in, so no
 * balance (and no external account's negative balance) can exceed 2 * 10^77, which fits the
 * ledger's NUMERIC(78, 0) columns (|x| < 10^78).
 */
export const LEDGER_SOURCE_CAP_WEI = 10n ** 77n;
