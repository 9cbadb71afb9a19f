// EIP-712 typed data for the market: Aztec's EpochProofQuote (unchanged), the sequencer's
// ProvingAuction and the operator's WorkerLogin, all under one configurable domain.
import { type Address, getAddress, type Hex, hashTypedData, type TypedDataDomain } from "viem";

export interface DomainConfig {
  name: string;
  version: string;
  chainId?: bigint | number | undefined;
  verifyingContract?: Address | undefined;
}

/**
 * The EIP-712 domain with the fields that are set: name and version only is the two-field domain
 * of Aztec's first quote contracts; with chainId and verifyingContract it is the full domain.
 * (Service configuration requires both or neither.)
 */
export function eip712Domain(config: DomainConfig): TypedDataDomain {
  const domain: TypedDataDomain = { name: config.name, version: config.version };
  if (config.chainId !== undefined) domain.chainId = BigInt(config.chainId);
  if (config.verifyingContract !== undefined)
    domain.verifyingContract = getAddress(config.verifyingContract);
  return domain;
}

export const quoteTypes = {
  EpochProofQuote: [
    { name: "epochToProve", type: "uint256" },
    { name: "validUntilSlot", type: "uint256" },
    { name: "bondAmount", type: "uint256" },
    { name: "prover", type: "address" },
    { name: "basisPointFee", type: "uint32" },
  ],
} as const;

export const auctionTypes = {
  ProvingAuction: [
    { name: "blockNumber", type: "uint256" },
    { name: "slot", type: "uint256" },
    { name: "txCount", type: "uint256" },
    { name: "txsHash", type: "bytes32" },
    { name: "blockReward", type: "uint256" },
    { name: "minBond", type: "uint256" },
    { name: "maxFeeBps", type: "uint32" },
    { name: "biddingClosesAt", type: "uint64" },
    { name: "proofDeadline", type: "uint64" },
  ],
} as const;

export const workerLoginTypes = {
  WorkerLogin: [
    { name: "operator", type: "address" },
    { name: "workerId", type: "string" },
    { name: "issuedAt", type: "uint64" },
  ],
} as const;

export const bidCancellationTypes = {
  BidCancellation: [
    { name: "blockNumber", type: "uint256" },
    { name: "prover", type: "address" },
    { name: "issuedAt", type: "uint64" },
  ],
} as const;

export interface EpochProofQuote {
  epochToProve: bigint;
  validUntilSlot: bigint;
  bondAmount: bigint;
  prover: Address;
  basisPointFee: number;
}

export interface ProvingAuction {
  blockNumber: bigint;
  slot: bigint;
  txCount: bigint;
  txsHash: Hex;
  blockReward: bigint;
  minBond: bigint;
  maxFeeBps: number;
  biddingClosesAt: bigint;
  proofDeadline: bigint;
}

export interface WorkerLogin {
  operator: Address;
  workerId: string;
  issuedAt: bigint;
}

export interface BidCancellation {
  blockNumber: bigint;
  prover: Address;
  issuedAt: bigint;
}

export function quoteTypedData(domain: DomainConfig, quote: EpochProofQuote) {
  return {
    domain: eip712Domain(domain),
    types: quoteTypes,
    primaryType: "EpochProofQuote" as const,
    message: quote,
  };
}

export function auctionTypedData(domain: DomainConfig, auction: ProvingAuction) {
  return {
    domain: eip712Domain(domain),
    types: auctionTypes,
    primaryType: "ProvingAuction" as const,
    message: auction,
  };
}

export function workerLoginTypedData(domain: DomainConfig, login: WorkerLogin) {
  return {
    domain: eip712Domain(domain),
    types: workerLoginTypes,
    primaryType: "WorkerLogin" as const,
    message: login,
  };
}

export function bidCancellationTypedData(domain: DomainConfig, cancel: BidCancellation) {
  return {
    domain: eip712Domain(domain),
    types: bidCancellationTypes,
    primaryType: "BidCancellation" as const,
    message: cancel,
  };
}

export const hashQuote = (domain: DomainConfig, quote: EpochProofQuote): Hex =>
  hashTypedData(quoteTypedData(domain, quote));
export const hashAuction = (domain: DomainConfig, auction: ProvingAuction): Hex =>
  hashTypedData(auctionTypedData(domain, auction));
export const hashWorkerLogin = (domain: DomainConfig, login: WorkerLogin): Hex =>
  hashTypedData(workerLoginTypedData(domain, login));
export const hashBidCancellation = (domain: DomainConfig, cancel: BidCancellation): Hex =>
  hashTypedData(bidCancellationTypedData(domain, cancel));
