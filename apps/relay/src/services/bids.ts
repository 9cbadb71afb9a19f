// Submitting, replacing and cancelling bids. The collateral reservation commits in the same
// Postgres transaction as the bid row (see packages/db ledger.ts for why the atomic step lives
// there). The auction row is read FOR SHARE so the aggregator's close (which updates it) waits
// for in-flight bids: a bid is either seen by the close or refused as closed, never lost.
import {
  checkQuote,
  DomainError,
  hashBidCancellation,
  hashQuote,
  recoverSigner,
  slotAt,
} from "@prover-boost/core";
import { accounts, applyMovement, InsufficientBalanceError, type Tx } from "@prover-boost/db";
import type { RelayContext } from "../context.ts";

export interface QuoteInput {
  epochToProve: number;
  validUntilSlot: number;
  bondAmount: bigint;
  prover: `0x${string}`;
  basisPointFee: number;
}

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

/**
 * Serializes a prover's bid operations (across all relay processes): the upsert takes the
 * prover row's lock, held until the transaction ends, in one statement.
 */
async function lockProver(tx: Tx, prover: string, now: number): Promise<void> {
  await tx.$executeRaw`
    INSERT INTO "Prover" (address, "createdAt") VALUES (${prover}, ${BigInt(now)})
    ON CONFLICT (address) DO UPDATE SET address = EXCLUDED.address`;
}

export async function submitBid(ctx: RelayContext, quote: QuoteInput, signature: string) {
  const digest = hashQuote(ctx.domain, {
    epochToProve: BigInt(quote.epochToProve),
    validUntilSlot: BigInt(quote.validUntilSlot),
    bondAmount: quote.bondAmount,
    prover: quote.prover,
    basisPointFee: quote.basisPointFee,
  });
  const signer = await recoverSigner(digest, signature, ctx.signatureBackend);
  if (signer !== quote.prover) {
    throw new DomainError("BAD_SIGNATURE", "the quote is not signed by its prover");
  }
  const now = ctx.now();
  const bidId = digest;
  return ctx.prisma.$transaction(async (tx) => {
    const auction = await lockAuctionShared(tx, quote.epochToProve);
    if (!auction) {
      throw new DomainError("AUCTION_NOT_FOUND", `no auction for block ${quote.epochToProve}`);
    }
    checkQuote(
      {
        blockNumber: quote.epochToProve,
        status: auction.status as "open",
        minBond: BigInt(auction.minBond),
        maxFeeBps: auction.maxFeeBps,
        biddingClosesAt: Number(auction.biddingClosesAt),
      },
      {
        epochToProve: BigInt(quote.epochToProve),
        validUntilSlot: BigInt(quote.validUntilSlot),
        bondAmount: quote.bondAmount,
        basisPointFee: quote.basisPointFee,
      },
      { ms: now, slot: slotAt(ctx.clock, now) },
    );
    await lockProver(tx, quote.prover, now);
    const existing = await tx.bid.findUnique({ where: { id: bidId } });
    if (existing) {
      if (existing.status === "active") return { bidId, status: "accepted" as const, replay: true };
      throw new DomainError(
        "BID_SUPERSEDED",
        "this quote was replaced or cancelled; sign a new one",
      );
    }
    const previous = await tx.bid.findFirst({
      where: { blockNumber: quote.epochToProve, prover: quote.prover, status: "active" },
    });
    if (previous) {
      await tx.bid.update({ where: { id: previous.id }, data: { status: "replaced" } });
      await applyMovement(tx, {
        kind: "release",
        legs: [
          {
            account: accounts.reserved(quote.prover),
            amount: -BigInt(previous.bondAmount.toFixed()),
          },
          {
            account: accounts.available(quote.prover),
            amount: BigInt(previous.bondAmount.toFixed()),
          },
        ],
        blockNumber: quote.epochToProve,
        ref: previous.id,
        nowMs: now,
      });
    }
    try {
      await applyMovement(tx, {
        kind: "reserve",
        legs: [
          { account: accounts.available(quote.prover), amount: -quote.bondAmount },
          { account: accounts.reserved(quote.prover), amount: quote.bondAmount },
        ],
        blockNumber: quote.epochToProve,
        ref: bidId,
        nowMs: now,
      });
    } catch (err) {
      if (err instanceof InsufficientBalanceError) {
        throw new DomainError(
          "INSUFFICIENT_COLLATERAL",
          `available collateral is short of the bond by ${err.shortBy} wei`,
        );
      }
      throw err;
    }
    await tx.bid.create({
      data: {
        id: bidId,
        blockNumber: quote.epochToProve,
        prover: quote.prover,
        validUntilSlot: BigInt(quote.validUntilSlot),
        bondAmount: quote.bondAmount.toString(),
        basisPointFee: quote.basisPointFee,
        signature: signature.toLowerCase(),
        createdAt: BigInt(now),
      },
    });
    return { bidId, status: "accepted" as const, replay: false };
  });
}

export async function cancelBid(
  ctx: RelayContext,
  blockNumber: number,
  prover: `0x${string}`,
  issuedAt: number,
  signature: string,
) {
  const digest = hashBidCancellation(ctx.domain, {
    blockNumber: BigInt(blockNumber),
    prover,
    issuedAt: BigInt(issuedAt),
  });
  const signer = await recoverSigner(digest, signature, ctx.signatureBackend);
  if (signer !== prover)
    throw new DomainError("BAD_SIGNATURE", "the cancellation is not signed by the prover");
  const now = ctx.now();
  if (Math.abs(now - issuedAt) > ctx.env.LOGIN_MAX_AGE_MS) {
    throw new DomainError("LOGIN_STALE", "the cancellation's issuedAt is too far from now");
  }
  return ctx.prisma.$transaction(async (tx) => {
    const auction = await lockAuctionShared(tx, blockNumber);
    if (!auction) throw new DomainError("AUCTION_NOT_FOUND", `no auction for block ${blockNumber}`);
    if (auction.status !== "open" || now >= Number(auction.biddingClosesAt)) {
      throw new DomainError("AUCTION_CLOSED", `the auction for block ${blockNumber} is closed`);
    }
    await lockProver(tx, prover, now);
    const bid = await tx.bid.findFirst({ where: { blockNumber, prover, status: "active" } });
    if (!bid)
      throw new DomainError("BID_NOT_FOUND", `no open bid of ${prover} for block ${blockNumber}`);
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
