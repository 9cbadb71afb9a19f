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
import { bytesToHex, type Hex, type LocalAccount } from "viem";
import type { AuctionJson, BidCancellationJson, QuoteJson, WorkerLoginJson } from "./wire.ts";

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

/**
 * A WorkerLogin with a fresh random 32-byte nonce and issuedAt = now. Sign it once and send it
 * once: the relay opens one session per nonce.
 */
export function newWorkerLogin(terms: {
  operator: Hex;
  workerId: string;
  capacity: number;
  jobTypes: WorkerLoginJson["jobTypes"];
  tier?: number;
  issuedAt?: number;
}): WorkerLoginJson {
  return {
    operator: terms.operator,
    workerId: terms.workerId,
    capacity: terms.capacity,
    jobTypes: [...terms.jobTypes],
    tier: terms.tier ?? 0,
    nonce: randomNonce(),
    issuedAt: terms.issuedAt ?? Date.now(),
  };
}

/** 32 random bytes as 0x hex. */
export function randomNonce(): Hex {
  return bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
}

/** Signs BidCancellation(bytes32 bidId,address prover,uint64 issuedAt) for one bid. */
export function signBidCancellation(
  account: LocalAccount,
  domain: DomainConfig,
  c: { bidId: Hex; prover: Hex; issuedAt: number },
): Promise<Hex> {
  return account.signTypedData(bidCancellationTypedData(domain, bidCancellationMessage(c)));
}

/**
 * How far behind the signer's clock `signedBidCancellation` dates a cancellation: the relay
 * refuses an issuedAt ahead of its own clock, so a signer whose clock runs a little ahead of the
 * relay's would otherwise be refused. A cancellation stays good for the relay's
 * LOGIN_MAX_AGE_MS (5 minutes by default) after its issuedAt, so a second costs nothing.
 */
export const CANCELLATION_CLOCK_MARGIN_MS = 1_000;

/**
 * A signed BidCancellation body for `DELETE /v1/bids/{blockNumber}/{prover}`, ready to send.
 * issuedAt defaults to now less CANCELLATION_CLOCK_MARGIN_MS, never ahead of this clock.
 */
export async function signedBidCancellation(
  account: LocalAccount,
  domain: DomainConfig,
  c: { bidId: Hex; prover: Hex; issuedAt?: number },
): Promise<BidCancellationJson> {
  const issuedAt = c.issuedAt ?? Math.max(0, Date.now() - CANCELLATION_CLOCK_MARGIN_MS);
  const signature = await signBidCancellation(account, domain, { ...c, issuedAt });
  return { bidId: c.bidId, issuedAt, signature };
}

/** The typed-data values clients sign, from the wire's JSON (shared with the relay). */
export { auctionMessage, bidCancellationMessage, quoteMessage, workerLoginMessage };
