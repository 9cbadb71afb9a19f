// Opening and reading auctions.
import { auctionMessage, type openAuctionBody, uint256IntJson } from "@prover-boost/contract";
import {
  DomainError,
  hashAuction,
  LEDGER_SOURCE_CAP_WEI,
  MAX_AMOUNT_WEI,
  recoverSigner,
  txsHash,
} from "@prover-boost/core";
import type { Auction, Bid } from "@prover-boost/db";
import { createBlock, insertBlockTxs, PrismaNamespace } from "@prover-boost/db";
import { getAddress, keccak256 } from "viem";
import type { z } from "zod";
import type { RelayContext } from "../context.ts";

export type OpenAuctionRequest = z.output<typeof openAuctionBody>;

export async function openAuction(ctx: RelayContext, input: OpenAuctionRequest) {
  const a = input.auction;
  const digest = hashAuction(ctx.domain, auctionMessage(a));
  const signer = await recoverSigner(digest, input.signature, ctx.signatureBackend);
  if (!ctx.settings.sequencers.includes(signer)) {
    throw new DomainError("SIGNER_NOT_ALLOWED", `${signer} is not an allowed sequencer`);
  }
  if (input.txs.length !== a.txCount) {
    throw new DomainError(
      "TX_COUNT_MISMATCH",
      `txCount is ${a.txCount} but ${input.txs.length} txs were sent`,
    );
  }
  if (txsHash(input.txs) !== a.txsHash.toLowerCase()) {
    throw new DomainError("TXS_HASH_MISMATCH", "txsHash is not keccak256 of the concatenated txs");
  }
  const txData = input.txData;
  if (txData !== undefined) {
    if (txData.length !== input.txs.length) {
      throw new DomainError(
        "TX_DATA_MISMATCH",
        `${txData.length} transactions' data were sent for ${input.txs.length} txs`,
      );
    }
    const wrong = txData.findIndex((d, i) => keccak256(d) !== input.txs[i]!.toLowerCase());
    if (wrong >= 0) {
      throw new DomainError("TX_DATA_MISMATCH", `keccak256(txData[${wrong}]) is not txs[${wrong}]`);
    }
  }
  const now = ctx.now();
  // A sequencer sending an auction again (its first answer lost) is told it exists, whenever.
  if (await auctionExists(ctx, a.blockNumber)) {
    throw new DomainError("AUCTION_EXISTS", `an auction for block ${a.blockNumber} exists`);
  }
  if (a.biddingClosesAt <= now) {
    throw new DomainError("INVALID_SCHEDULE", "biddingClosesAt must be in the future");
  }
  if (a.proofDeadline <= a.biddingClosesAt) {
    throw new DomainError("INVALID_SCHEDULE", "proofDeadline must come after biddingClosesAt");
  }
  const window = ctx.settings.minProvingWindowMs;
  if (a.proofDeadline - a.biddingClosesAt < window) {
    throw new DomainError(
      "INVALID_SCHEDULE",
      `proofDeadline must be at least ${window} ms after biddingClosesAt (MIN_PROVING_WINDOW_MS)`,
    );
  }
  for (const [field, value] of [
    ["blockReward", a.blockReward],
    ["minBond", a.minBond],
  ] as const) {
    if (value > MAX_AMOUNT_WEI) {
      throw new DomainError(
        "AMOUNT_TOO_LARGE",
        `${field} ${value} exceeds the largest amount accepted, ${MAX_AMOUNT_WEI} wei`,
      );
    }
  }
  // Every block reward is paid out of the rewards source once; their total stays within the
  // ledger's bound, so no payout can overflow an account.
  const promised = await ctx.prisma.auction.aggregate({ _sum: { blockReward: true } });
  const total = BigInt(promised._sum.blockReward?.toFixed() ?? "0") + a.blockReward;
  if (total > LEDGER_SOURCE_CAP_WEI) {
    throw new DomainError(
      "AMOUNT_TOO_LARGE",
      "blockReward would take the rewards of all auctions past the ledger's bound",
    );
  }
  await assertRewardFunded(ctx, a.blockNumber, a.blockReward, signer);
  try {
    await ctx.prisma.$transaction([
      ctx.prisma.auction.create({
        data: {
          blockNumber: a.blockNumber,
          slot: a.slot.toString(),
          txCount: a.txCount,
          txsHash: a.txsHash.toLowerCase(),
          txs: input.txs,
          blockReward: a.blockReward.toString(),
          minBond: a.minBond.toString(),
          maxFeeBps: a.maxFeeBps,
          biddingClosesAt: BigInt(a.biddingClosesAt),
          proofDeadline: BigInt(a.proofDeadline),
          sequencer: signer,
          signature: input.signature.toLowerCase(),
          proofSystem: ctx.settings.proofs.system,
          createdAt: BigInt(now),
        },
      }),
      createBlock(ctx.prisma, a.blockNumber, now),
      ...(txData && txData.length > 0
        ? [
            insertBlockTxs(
              ctx.prisma,
              a.blockNumber,
              txData.map((data, i) => ({ hash: input.txs[i]!, data })),
            ),
          ]
        : []),
    ]);
  } catch (err) {
    if (err instanceof PrismaNamespace.PrismaClientKnownRequestError && err.code === "P2002") {
      throw new DomainError("AUCTION_EXISTS", `an auction for block ${a.blockNumber} exists`);
    }
    throw err;
  }
  return getAuctionView(ctx, a.blockNumber);
}

/**
 * COLLATERAL=chain: the block's reward must be on the escrow before bids are taken, funded by
 * the auction's own sequencer with at least `blockReward`, as the index has booked it
 * (confirmed). Otherwise the winner's bond would be locked in the ledger while the escrow
 * refuses the lock, the payout would wait forever, and a slash share would go to another
 * address on the escrow than in the ledger.
 */
async function assertRewardFunded(
  ctx: RelayContext,
  blockNumber: number,
  blockReward: bigint,
  sequencer: string,
) {
  const index = ctx.escrowIndex;
  if (!index) return;
  const funding = await index.rewardFunding(blockNumber);
  let reason: string | null = null;
  if (!funding) {
    reason = `no confirmed fundReward for block ${blockNumber} is indexed from the escrow yet`;
  } else if (funding.sequencer !== getAddress(sequencer)) {
    reason = `block ${blockNumber}'s reward was funded by ${funding.sequencer}, not by the auction's sequencer ${getAddress(sequencer)}`;
  } else if (funding.amount < blockReward) {
    reason = `block ${blockNumber}'s funded reward ${funding.amount} wei is below its blockReward ${blockReward} wei`;
  } else if (funding.closed) {
    reason = `the escrow has already closed block ${blockNumber} (settled or refunded)`;
  }
  if (reason === null) return;
  throw new DomainError("REWARD_NOT_FUNDED", reason);
}

async function auctionExists(ctx: RelayContext, blockNumber: number): Promise<boolean> {
  const existing = await ctx.prisma.auction.findUnique({
    where: { blockNumber },
    select: { blockNumber: true },
  });
  return existing !== null;
}

export function quoteJson(bid: Bid) {
  return {
    epochToProve: bid.blockNumber,
    validUntilSlot: uint256IntJson(BigInt(bid.validUntilSlot.toFixed())),
    bondAmount: bid.bondAmount.toFixed(),
    prover: bid.prover as `0x${string}`,
    basisPointFee: bid.basisPointFee,
  };
}

export function auctionView(auction: Auction, bidCount: number, winner: Bid | null) {
  return {
    blockNumber: auction.blockNumber,
    slot: uint256IntJson(BigInt(auction.slot.toFixed())),
    txCount: auction.txCount,
    txsHash: auction.txsHash,
    blockReward: auction.blockReward.toFixed(),
    minBond: auction.minBond.toFixed(),
    maxFeeBps: auction.maxFeeBps,
    biddingClosesAt: Number(auction.biddingClosesAt),
    proofDeadline: Number(auction.proofDeadline),
    sequencer: auction.sequencer,
    status: auction.status,
    bidCount,
    createdAt: Number(auction.createdAt),
    closedAt: auction.closedAt === null ? null : Number(auction.closedAt),
    winner: winner
      ? {
          bidId: winner.id,
          quote: quoteJson(winner),
          signature: winner.signature,
        }
      : null,
    settlementFeeBps: auction.settlementFeeBps,
    proofSystem: auction.proofSystem as "sim" | "honk",
  };
}

/** The auction as the public sees it: bids stay sealed (count only) while it is open. */
export async function getAuctionView(ctx: RelayContext, blockNumber: number) {
  const auction = await ctx.prisma.auction.findUnique({ where: { blockNumber } });
  if (!auction) throw new DomainError("AUCTION_NOT_FOUND", `no auction for block ${blockNumber}`);
  const bidCount = await ctx.prisma.bid.count({
    where: { blockNumber, status: { in: ["active", "won", "lost", "expired"] } },
  });
  const winner = auction.winnerBidId
    ? await ctx.prisma.bid.findUnique({ where: { id: auction.winnerBidId } })
    : null;
  return auctionView(auction, bidCount, winner);
}
