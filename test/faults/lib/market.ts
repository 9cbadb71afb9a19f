// The market side of a fault scenario: the harness is the sequencer (opens auctions) and the
// bidders (signed quotes, retried while the relay answers 5xx or not at all, as a prover would).
// Every bid answered 202 is recorded in the world, to be looked up in Postgres by id afterwards.
import { type RelayClient, RelayError } from "@prover-boost/sdk";
import type { LocalAccount } from "viem";
import { openAuction, signedBid } from "../../fixtures.ts";
import { sleep } from "./util.ts";
import type { World } from "./world.ts";

export interface Bidder {
  account: LocalAccount;
  /** Fee in basis points (the lowest wins). */
  fee: number;
}

export interface BlockPlan {
  txCount: number;
  /** Bidding window from the moment the auction is signed, ms. */
  biddingMs: number;
  /** Proof deadline after the bidding closes, ms. */
  deadlineMs: number;
  bidders: Bidder[];
}

export interface BidTally {
  accepted: number;
  /** Answers other than 202 that were retried (5xx, timeouts, refused connections). */
  retried: number;
  refused: number;
  /** Every answer that was not 202, by status and code ("503 UNAVAILABLE", "no answer"). */
  answers: Record<string, number>;
}

/** Opens the auction of block `n` (retried until the relay takes it) and places every bid. */
export async function openBlock(world: World, n: number, plan: BlockPlan): Promise<BidTally> {
  const bids = await Promise.all(
    plan.bidders.map((b) => signedBid(b.account, n, { basisPointFee: b.fee })),
  );
  const now = Date.now();
  const open = await openAuction(n, {
    txCount: plan.txCount,
    biddingClosesAt: now + plan.biddingMs,
    proofDeadline: now + plan.biddingMs + plan.deadlineMs,
  });
  await retry(
    () => world.client.openAuction(open.auction, open.txs, open.signature),
    now + plan.biddingMs,
  );
  const tally: BidTally = { accepted: 0, retried: 0, refused: 0, answers: {} };
  const until = open.auction.biddingClosesAt;
  await Promise.all(bids.map((b) => placeBid(world, b.quote, b.signature, until, tally)));
  return tally;
}

/**
 * Submits one signed quote until it is answered 202 (recorded), refused (4xx other than 429), or
 * the bidding closes. Resubmitting the same signed quote is safe: it returns the same bid id.
 */
export async function placeBid(
  world: World,
  quote: Parameters<RelayClient["submitBid"]>[0],
  signature: string,
  until: number,
  tally: BidTally,
  client: RelayClient = world.client,
): Promise<void> {
  for (;;) {
    try {
      const { bidId } = await client.submitBid(quote, signature);
      world.acceptedBids.add(bidId);
      tally.accepted++;
      return;
    } catch (err) {
      const answer = err instanceof RelayError ? `${err.status} ${err.code}` : "no answer";
      tally.answers[answer] = (tally.answers[answer] ?? 0) + 1;
      if (err instanceof RelayError && err.status < 500 && err.status !== 429) {
        tally.refused++;
        return;
      }
      tally.retried++;
      if (Date.now() > until) return;
      await sleep(100);
    }
  }
}

/** Retries `fn` on 5xx and transport errors until `until`; 4xx answers are thrown. */
async function retry<T>(fn: () => Promise<T>, until: number): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RelayError && err.status < 500) throw err;
      if (Date.now() > until) throw err;
      await sleep(100);
    }
  }
}
