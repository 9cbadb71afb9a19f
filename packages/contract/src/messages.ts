// JSON -> EIP-712 typed-data values. The sequencer, the prover operator and the worker sign these,
// and the relay verifies the very same values: both sides convert here. Amounts may come as the
// wire's decimal strings (clients) or as already-parsed bigints (the relay, after validation).
import type {
  BidCancellation,
  EpochProofQuote,
  ProvingAuction,
  WorkerLogin,
} from "@prover-boost/core";

type Amount = string | bigint;

export interface AuctionTerms {
  blockNumber: number;
  slot: number | string | bigint;
  txCount: number;
  txsHash: `0x${string}`;
  blockReward: Amount;
  minBond: Amount;
  maxFeeBps: number;
  biddingClosesAt: number;
  proofDeadline: number;
}

export function auctionMessage(a: AuctionTerms): ProvingAuction {
  return {
    blockNumber: BigInt(a.blockNumber),
    slot: BigInt(a.slot),
    txCount: BigInt(a.txCount),
    txsHash: a.txsHash,
    blockReward: BigInt(a.blockReward),
    minBond: BigInt(a.minBond),
    maxFeeBps: a.maxFeeBps,
    biddingClosesAt: BigInt(a.biddingClosesAt),
    proofDeadline: BigInt(a.proofDeadline),
  };
}

export interface QuoteTerms {
  epochToProve: number;
  validUntilSlot: number | string | bigint;
  bondAmount: Amount;
  prover: `0x${string}`;
  basisPointFee: number;
}

export function quoteMessage(q: QuoteTerms): EpochProofQuote {
  return {
    epochToProve: BigInt(q.epochToProve),
    validUntilSlot: BigInt(q.validUntilSlot),
    bondAmount: BigInt(q.bondAmount),
    prover: q.prover,
    basisPointFee: q.basisPointFee,
  };
}

export function workerLoginMessage(login: {
  operator: `0x${string}`;
  workerId: string;
  capacity: number;
  jobTypes: readonly string[];
  tier: number;
  nonce: `0x${string}`;
  issuedAt: number;
}): WorkerLogin {
  return {
    operator: login.operator,
    workerId: login.workerId,
    capacity: login.capacity,
    jobTypes: [...login.jobTypes],
    tier: login.tier,
    nonce: login.nonce,
    issuedAt: BigInt(login.issuedAt),
  };
}

export function bidCancellationMessage(c: {
  bidId: `0x${string}`;
  prover: `0x${string}`;
  issuedAt: number;
}): BidCancellation {
  return {
    bidId: c.bidId,
    prover: c.prover,
    issuedAt: BigInt(c.issuedAt),
  };
}
