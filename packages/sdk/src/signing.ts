// Signing helpers for sequencers, prover operators and workers. Conversions between the JSON
// wire shapes and the typed-data values live here so every client signs exactly what the relay
// verifies.
import {
  auctionTypedData,
  bidCancellationTypedData,
  type DomainConfig,
  quoteTypedData,
  workerLoginTypedData,
} from "@prover-boost/core";
import type { Hex, LocalAccount } from "viem";
import type { AuctionJson, QuoteJson, WorkerLoginJson } from "./wire.ts";

export function auctionMessage(a: AuctionJson) {
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

export function quoteMessage(q: QuoteJson) {
  return {
    epochToProve: BigInt(q.epochToProve),
    validUntilSlot: BigInt(q.validUntilSlot),
    bondAmount: BigInt(q.bondAmount),
    prover: q.prover,
    basisPointFee: q.basisPointFee,
  };
}

export function signAuction(
  account: LocalAccount,
  domain: DomainConfig,
  a: AuctionJson,
): Promise<Hex> {
  return account.signTypedData(auctionTypedData(domain, auctionMessage(a)));
}

export function signQuote(account: LocalAccount, domain: DomainConfig, q: QuoteJson): Promise<Hex> {
  return account.signTypedData(quoteTypedData(domain, quoteMessage(q)));
}

export function signWorkerLogin(
  account: LocalAccount,
  domain: DomainConfig,
  login: WorkerLoginJson,
): Promise<Hex> {
  return account.signTypedData(
    workerLoginTypedData(domain, {
      operator: login.operator,
      workerId: login.workerId,
      issuedAt: BigInt(login.issuedAt),
    }),
  );
}

export function signBidCancellation(
  account: LocalAccount,
  domain: DomainConfig,
  c: { blockNumber: number; prover: `0x${string}`; issuedAt: number },
): Promise<Hex> {
  return account.signTypedData(
    bidCancellationTypedData(domain, {
      blockNumber: BigInt(c.blockNumber),
      prover: c.prover,
      issuedAt: BigInt(c.issuedAt),
    }),
  );
}
