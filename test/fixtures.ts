// Signed fixtures for integration tests: auctions, quotes, worker logins.
import { txsHash } from "@prover-boost/core";
import {
  type AuctionJson,
  newWorkerLogin,
  type QuoteJson,
  signAuction,
  signQuote,
  signWorkerLogin,
  type WorkerLoginJson,
} from "@prover-boost/sdk";
import { keccak256, type LocalAccount, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { type Stack, sequencer } from "./harness.ts";
import { testDomain } from "./support/domain.ts";

/** The test stacks' signing domain (four fields: bound to the test deployment). */
export const domain = testDomain;
export const allJobTypes = [
  "base",
  "merge",
  "block_root",
  "single_tx_block_root",
  "empty_block_root",
] as WorkerLoginJson["jobTypes"];

export const account = (i: number) => privateKeyToAccount(`0x${i.toString(16).padStart(64, "0")}`);

export const txsFor = (block: number, n: number) =>
  Array.from({ length: n }, (_, i) => keccak256(toHex(`tx-${block}-${i}`)));

export const currentSlot = () => Math.floor(Date.now() / 12_000);

export async function openAuction(
  blockNumber: number,
  overrides: Partial<AuctionJson> & { txCount?: number } = {},
  signer: LocalAccount = sequencer,
) {
  const txs = txsFor(blockNumber, overrides.txCount ?? 4);
  const now = Date.now();
  const auction: AuctionJson = {
    blockNumber,
    slot: currentSlot(),
    txCount: txs.length,
    txsHash: txsHash(txs),
    blockReward: "1000000000000000000",
    minBond: "1000",
    maxFeeBps: 3000,
    biddingClosesAt: now + 60_000,
    proofDeadline: now + 120_000,
    ...overrides,
  };
  const signature = await signAuction(signer, domain, auction);
  return { auction, txs, signature, body: { auction, txs, signature } };
}

export async function signedBid(
  prover: LocalAccount,
  blockNumber: number,
  overrides: Partial<QuoteJson> = {},
) {
  const quote: QuoteJson = {
    epochToProve: blockNumber,
    validUntilSlot: currentSlot() + 1000,
    bondAmount: "5000",
    prover: prover.address,
    basisPointFee: 1000,
    ...overrides,
  };
  return { quote, signature: await signQuote(prover, domain, quote) };
}

export async function workerSession(
  stack: Stack,
  operator: LocalAccount,
  workerId = "w0",
  jobTypes = allJobTypes,
  capacity = 1,
) {
  const login: WorkerLoginJson = newWorkerLogin({
    operator: operator.address,
    workerId,
    capacity,
    jobTypes,
  });
  const signature = await signWorkerLogin(operator, domain, login);
  const { token } = await stack.client.createSession(login, signature, {
    cores: 4,
    memoryMb: 8192,
    gpus: 0,
  });
  return stack.client.withToken(token);
}

/** Everything a rejected request could have changed, for before/after comparison. */
export async function snapshot(stack: Stack) {
  const p = stack.db.prisma;
  const reads = {
    auctions: p.auction.findMany({ orderBy: { blockNumber: "asc" } }),
    bids: p.bid.findMany({ orderBy: { id: "asc" } }),
    ledger: p.ledgerEntry.count(),
    balances: p.accountBalance.findMany({ orderBy: { account: "asc" } }),
    sessions: p.workerSession.count(),
    penalties: p.penalty.count(),
    payouts: p.payout.count(),
    jobs: p.proofJob.findMany({ orderBy: { id: "asc" } }),
    blocks: p.block.findMany({ orderBy: { number: "asc" } }),
    nonces: p.loginNonce.count(),
    adminDeposits: p.adminDeposit.count(),
    leaseKeys: stack.relay.ctx.fabric.redis
      .keys(`${stack.prefix}:pb:lease:*`)
      .then((keys) => keys.length),
  };
  const values = await Promise.all(Object.values(reads));
  return JSON.parse(
    JSON.stringify(
      Object.fromEntries(Object.keys(reads).map((name, i) => [name, values[i]])),
      (_k, v) => (typeof v === "bigint" ? v.toString() : v),
    ),
  );
}
