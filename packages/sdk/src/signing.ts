// Signing helpers for sequencers, prover operators and workers. The JSON -> typed-data
// conversions come from the contract, which the relay verifies with too, so every client signs
// exactly what the relay verifies.
import {
  auctionMessage,
  bidCancellationMessage,
  quoteMessage,
  workerLoginMessage,
} from "@prover-boost/contract";
import {
  auctionTypedData,
  bidCancellationTypedData,
  type DomainConfig,
  quoteTypedData,
  workerLoginTypedData,
} from "@prover-boost/core";
import type { Hex, LocalAccount } from "viem";
import type { AuctionJson, QuoteJson, WorkerLoginJson } from "./wire.ts";

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
  return account.signTypedData(workerLoginTypedData(domain, workerLoginMessage(login)));
}

export function signBidCancellation(
  account: LocalAccount,
  domain: DomainConfig,
  c: { blockNumber: number; prover: `0x${string}`; issuedAt: number },
): Promise<Hex> {
  return account.signTypedData(bidCancellationTypedData(domain, bidCancellationMessage(c)));
}

/** The typed-data values clients sign, from the wire's JSON (shared with the relay). */
export { auctionMessage, bidCancellationMessage, quoteMessage, workerLoginMessage };
