// The reference bidding rule: what a prover operator bids on an auction, from its policy. Pure:
// the same auction and policy always give the same answer.
import { defaultJobWeights, type JobWeights, planTree } from "@prover-boost/core";

export interface BidPolicy {
  /** The least fee, in wei, per unit of job weight the block's proof tree holds. */
  feeFloorWeiPerWeight: bigint;
  /** The most bond, in wei, this operator locks on one block. */
  maxBond: bigint;
  /** Most blocks bid on or won (and not yet proven) at once. */
  capacity: number;
  /** Weight per job type (default: core's defaultJobWeights). */
  jobWeights: JobWeights;
}

export interface AuctionTerms {
  txCount: number;
  blockReward: bigint;
  minBond: bigint;
  maxFeeBps: number;
}

export type Pricing =
  | { bid: true; basisPointFee: number; bondAmount: bigint; work: bigint; feeFloorWei: bigint }
  | { bid: false; reason: "no_reward" | "fee_above_max" | "bond_above_max"; work: bigint };

/** The total job weight of a block of `txCount` transactions: every node of its proof tree. */
export function blockWork(txCount: number, weights: JobWeights = defaultJobWeights): bigint {
  let work = 0n;
  for (const node of planTree(txCount).nodes) work += weights[node.type];
  return work;
}

/**
 * Prices one auction: the fee is the least whole basis point of the block reward that covers
 * feeFloorWeiPerWeight x the block's work, and the bond is the auction's minimum. No bid when the
 * reward is zero, that fee is above the auction's maxFeeBps, or its minimum bond above maxBond.
 */
export function priceAuction(a: AuctionTerms, policy: BidPolicy): Pricing {
  const work = blockWork(a.txCount, policy.jobWeights);
  if (a.minBond > policy.maxBond) return { bid: false, reason: "bond_above_max", work };
  const feeFloorWei = work * policy.feeFloorWeiPerWeight;
  if (a.blockReward <= 0n) {
    return feeFloorWei === 0n
      ? { bid: true, basisPointFee: 0, bondAmount: a.minBond, work, feeFloorWei }
      : { bid: false, reason: "no_reward", work };
  }
  const bps = (feeFloorWei * 10_000n + a.blockReward - 1n) / a.blockReward;
  if (bps > BigInt(a.maxFeeBps)) return { bid: false, reason: "fee_above_max", work };
  return { bid: true, basisPointFee: Number(bps), bondAmount: a.minBond, work, feeFloorWei };
}
