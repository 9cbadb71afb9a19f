// What the bid path keeps between requests: the cached immutable terms of open auctions and the
// group-commit writer of pending bids. Built once in relay.ts; used by services/bids.ts.
import type { quoteBody } from "@prover-boost/contract";
import type { AuctionTerms } from "@prover-boost/core";
import type { BidWriteOutcome } from "@prover-boost/db";
import type { z } from "zod";
import type { LanedGroupCommit } from "./group-commit.ts";

/** A quote as the contract's schema parsed it. */
export type QuoteRequest = z.output<typeof quoteBody>;

/** Immutable terms of an open auction, cached per relay process (the status is rechecked in SQL). */
export type CachedTerms = Omit<AuctionTerms, "status">;

export interface PendingBid {
  id: `0x${string}`;
  quote: QuoteRequest;
  signature: string;
}

export interface BidIngest {
  terms: Map<number, CachedTerms>;
  batcher: LanedGroupCommit<PendingBid, BidWriteOutcome>;
}
