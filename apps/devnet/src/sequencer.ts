// The simulated sequencer: opens one proving auction per block on a fixed cadence.
import { type DomainConfig, txsHash } from "@prover-boost/core";
import { type AuctionJson, type RelayClient, signAuction } from "@prover-boost/sdk";
import type { LocalAccount } from "viem";
import { blockTxs, pick } from "./seed.ts";

export interface SequencerOptions {
  client: RelayClient;
  account: LocalAccount;
  domain: DomainConfig;
  seed: string;
  txs: number;
  biddingMs: number;
  deadlineMs: number;
  slotDurationMs: number;
  genesisTimeMs: number;
  /** Called before the auction is opened (chain mode: the sequencer funds the reward). */
  beforeOpen?: (blockNumber: number, blockReward: bigint) => Promise<void>;
}

export interface OpenedBlock {
  number: number;
  blockReward: bigint;
  txs: number;
  openedAt: number;
}

export async function openBlockAuction(
  opts: SequencerOptions,
  blockNumber: number,
): Promise<OpenedBlock> {
  const { hashes: txs, data } = blockTxs(opts.seed, blockNumber, opts.txs);
  const now = Date.now();
  const blockReward =
    10n ** 18n + BigInt(pick(opts.seed, 0, 999_999_999, "reward", blockNumber)) * 10n ** 9n + 7n;
  await opts.beforeOpen?.(blockNumber, blockReward);
  const auction: AuctionJson = {
    blockNumber,
    slot: Math.max(0, Math.floor((now - opts.genesisTimeMs) / opts.slotDurationMs)),
    txCount: txs.length,
    txsHash: txsHash(txs),
    blockReward: blockReward.toString(),
    minBond: (10n ** 17n).toString(),
    maxFeeBps: 5000,
    biddingClosesAt: now + opts.biddingMs,
    proofDeadline: now + opts.biddingMs + opts.deadlineMs,
  };
  const signature = await signAuction(opts.account, opts.domain, auction);
  await opts.client.openAuction(auction, txs, signature, data);
  return { number: blockNumber, blockReward, txs: txs.length, openedAt: now };
}
