// The reference bidding agent: each round it reads the open auctions and the operator's settled
// bids from the relay (bids stay sealed while an auction is open, so the agent keeps its own
// record of the bids it placed), keeps at most `capacity` blocks bid on or won-and-unproven,
// cancels its newest open bids when more than that are held, and bids on new open auctions by
// the pricing rule.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import type { DomainConfig } from "@prover-boost/core";
import {
  type AuctionView,
  type BidItem,
  type RelayClient,
  RelayError,
  type RelayInfo,
  signedBidCancellation,
  signQuote,
} from "@prover-boost/sdk";
import type { Hex, LocalAccount } from "viem";
import { UsageError } from "../cli-options.ts";
import type { BidConfig } from "./bid-config.ts";
import { priceAuction } from "./pricing.ts";

export type BidEvent =
  | { event: "bid"; blockNumber: number; bidId: string; basisPointFee: number; bondAmount: string }
  | { event: "skip"; blockNumber: number; reason: string }
  | { event: "cancel"; blockNumber: number; bidId: string }
  | { event: "error"; blockNumber?: number; message: string };

const MAX_PAGES = 50;

/**
 * The agent's record of the bids it placed on auctions still open (the relay keeps them sealed),
 * and whose they are (a file is one prover's: another key refuses it).
 */
export interface BidState {
  prover?: string;
  bids: { blockNumber: number; bidId: string; createdAt: number }[];
}

/** A bid state file of another prover's, refused. */
export class BidStateOwnerError extends UsageError {}

/**
 * Reads the state; with `prover`, refuses a file that records another prover's bids (and takes
 * an older file, which names none, as this prover's).
 */
export function loadBidState(path: string, prover?: string): BidState {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      return prover ? { prover, bids: [] } : { bids: [] };
    }
    throw err;
  }
  const raw = JSON.parse(text) as Partial<BidState>;
  const owner = typeof raw.prover === "string" ? raw.prover : undefined;
  if (prover && owner && owner.toLowerCase() !== prover.toLowerCase()) {
    throw new BidStateOwnerError(
      `${path} records the bids of ${owner}, not of ${prover}: give this key its own --state file`,
    );
  }
  const bids = Array.isArray(raw.bids) ? raw.bids : [];
  const who = owner ?? prover;
  return who ? { prover: who, bids } : { bids };
}

/**
 * Writes the state atomically (a temporary file renamed over it). With `loaded` (the bid ids the
 * caller's state was read with), a bid someone else removed from the file since (`cancel`, run
 * while the agent runs) stays removed: the caller's copy does not bring it back.
 */
export function saveBidState(path: string, state: BidState, loaded?: ReadonlySet<string>): void {
  if (loaded) {
    const onDisk = new Set(loadBidState(path).bids.map((b) => b.bidId));
    state.bids = state.bids.filter((b) => !loaded.has(b.bidId) || onDisk.has(b.bidId));
  }
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** Every bid of `prover` the relay lists (newest first). */
export async function listProverBids(client: RelayClient, prover: Hex): Promise<BidItem[]> {
  const out: BidItem[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = await client.listBids({ prover, limit: 500, ...(cursor ? { cursor } : {}) });
    out.push(...page.items);
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return out;
}

async function openAuctions(client: RelayClient): Promise<AuctionView[]> {
  const out: AuctionView[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = await client.listAuctions({ status: "open", limit: 500, cursor });
    out.push(...page.items);
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return out;
}

/** The relay's signing domain, as GET /v1/info gives it. */
export function domainOf(info: RelayInfo): DomainConfig {
  return {
    name: info.domain.name,
    version: info.domain.version,
    ...(info.domain.chainId !== undefined ? { chainId: info.domain.chainId } : {}),
    ...(info.domain.verifyingContract !== undefined
      ? { verifyingContract: info.domain.verifyingContract as Hex }
      : {}),
  };
}

/** Withdraws one bid with a signed BidCancellation. */
export async function cancelBid(
  client: RelayClient,
  account: LocalAccount,
  domain: DomainConfig,
  bid: { bidId: string; blockNumber: number },
) {
  // Dated a little behind this clock: the relay refuses a cancellation ahead of its own.
  const cancellation = await signedBidCancellation(account, domain, {
    bidId: bid.bidId as Hex,
    prover: account.address,
  });
  return client.cancelBid(bid.blockNumber, account.address, cancellation);
}

/** Whether a block this operator won still has proving ahead (its root proof is not in). */
async function stillProving(client: RelayClient, blockNumber: number): Promise<boolean> {
  try {
    return (await client.getBlock(blockNumber)).rootProof === null;
  } catch (err) {
    if (err instanceof RelayError && err.status === 404) return true;
    throw err;
  }
}

/** One round of the agent; returns what it did. */
export async function bidRound(opts: {
  client: RelayClient;
  account: LocalAccount;
  info: RelayInfo;
  config: BidConfig;
  /** The bids this agent placed on open auctions; updated in place. */
  state: BidState;
  /**
   * Won blocks already seen with their root proof (they never go back): kept by the caller
   * across rounds, so each round asks the relay only about the blocks still being proved.
   */
  proved?: Set<number>;
  now?: number;
}): Promise<BidEvent[]> {
  const { client, account, info, config } = opts;
  const domain = domainOf(info);
  const events: BidEvent[] = [];
  const open = await openAuctions(client);
  const openBlocks = new Set(open.map((a) => a.blockNumber));
  // Bids on auctions no longer open are settled: the relay lists them from then on.
  opts.state.bids = opts.state.bids.filter((b) => openBlocks.has(b.blockNumber));
  const active = [...opts.state.bids];
  const settled = await listProverBids(client, account.address);
  let wonInFlight = 0;
  for (const b of settled.filter((x) => x.status === "won")) {
    if (opts.proved?.has(b.blockNumber)) continue;
    if (await stillProving(client, b.blockNumber)) wonInFlight++;
    else opts.proved?.add(b.blockNumber);
  }

  // Over capacity (blocks won since, or a lower capacity): withdraw the newest open bids.
  const keep = Math.max(0, config.capacity - wonInFlight);
  const newestFirst = [...active].sort(
    (a, b) => b.createdAt - a.createdAt || b.blockNumber - a.blockNumber,
  );
  const excess = newestFirst.slice(0, Math.max(0, active.length - keep));
  let held = wonInFlight + active.length;
  for (const bid of excess) {
    try {
      await cancelBid(client, account, domain, bid);
      opts.state.bids = opts.state.bids.filter((b) => b.bidId !== bid.bidId);
      held--;
      events.push({ event: "cancel", blockNumber: bid.blockNumber, bidId: bid.bidId });
    } catch (err) {
      events.push({ event: "error", blockNumber: bid.blockNumber, message: String(err) });
    }
  }

  const seen = new Set([...active, ...settled].map((b) => b.blockNumber));
  const now = opts.now ?? Date.now();
  const auctions = open
    .filter((a) => !seen.has(a.blockNumber) && a.biddingClosesAt > now)
    .sort((a, b) => a.blockNumber - b.blockNumber);
  for (const a of auctions) {
    const price = priceAuction(
      {
        txCount: a.txCount,
        blockReward: BigInt(a.blockReward),
        minBond: BigInt(a.minBond),
        maxFeeBps: a.maxFeeBps,
      },
      config,
    );
    if (!price.bid) {
      events.push({ event: "skip", blockNumber: a.blockNumber, reason: price.reason });
      continue;
    }
    if (held >= config.capacity) {
      events.push({ event: "skip", blockNumber: a.blockNumber, reason: "capacity" });
      continue;
    }
    // The quote stays valid through the block's proving deadline.
    const validUntilSlot =
      Math.floor((a.proofDeadline - info.genesisTimeMs) / info.slotDurationMs) + 1;
    const quote = {
      epochToProve: a.blockNumber,
      validUntilSlot,
      bondAmount: price.bondAmount.toString(),
      prover: account.address,
      basisPointFee: price.basisPointFee,
    };
    try {
      const signature = await signQuote(account, domain, quote);
      const answer = await client.submitBid(quote, signature);
      held++;
      opts.state.bids.push({ blockNumber: a.blockNumber, bidId: answer.bidId, createdAt: now });
      events.push({
        event: "bid",
        blockNumber: a.blockNumber,
        bidId: answer.bidId,
        basisPointFee: price.basisPointFee,
        bondAmount: quote.bondAmount,
      });
    } catch (err) {
      events.push({ event: "error", blockNumber: a.blockNumber, message: String(err) });
    }
  }
  return events;
}
