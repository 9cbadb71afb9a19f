// The simulated sequencer: opens one proving auction per block on a fixed cadence.
import { type DomainConfig, txsHash } from "@prover-boost/core";
import { type AuctionJson, type RelayClient, RelayError, signAuction } from "@prover-boost/sdk";
import type { LocalAccount } from "viem";
import { blockTxs, pick } from "./seed.ts";

/** Longest wait for the relay to index a block's funding before its auction is opened. */
const FUNDING_WAIT_MS = 60_000;

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
  const blockReward =
    10n ** 18n + BigInt(pick(opts.seed, 0, 999_999_999, "reward", blockNumber)) * 10n ** 9n + 7n;
  await opts.beforeOpen?.(blockNumber, blockReward);
  // Chain mode: the relay opens the auction once its index has booked the funding (confirmed);
  // until then it answers 422 REWARD_NOT_FUNDED. The schedule is taken afresh for each try.
  const until = Date.now() + FUNDING_WAIT_MS;
  let now = Date.now();
  for (;;) {
    now = Date.now();
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
    try {
      await opts.client.openAuction(auction, txs, signature, data);
      break;
    } catch (err) {
      const unfunded = err instanceof RelayError && err.code === "REWARD_NOT_FUNDED";
      if (!unfunded || !opts.beforeOpen || Date.now() >= until) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { number: blockNumber, blockReward, txs: txs.length, openedAt: now };
}
