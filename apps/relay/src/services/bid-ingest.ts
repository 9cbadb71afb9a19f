// What the bid path keeps between requests: the cached immutable terms of open auctions and the
// group-commit writer of pending bids. Built once in relay.ts; used by services/bids.ts.
import type { AuctionTerms } from "@prover-boost/core";
import type { BidWriteOutcome } from "@prover-boost/db";
import type { LanedGroupCommit } from "./group-commit.ts";

export interface QuoteInput {
  epochToProve: number;
  validUntilSlot: number;
  bondAmount: bigint;
  prover: `0x${string}`;
  basisPointFee: number;
}

/** Immutable terms of an open auction, cached per relay process (the status is rechecked in SQL). */
export type CachedTerms = Omit<AuctionTerms, "status">;

export interface PendingBid {
  id: `0x${string}`;
  quote: QuoteInput;
  signature: string;
}

export interface BidIngest {
  terms: Map<number, CachedTerms>;
  batcher: LanedGroupCommit<PendingBid, BidWriteOutcome>;
}
