// An auction whose sequencer set no minimum bond, flooded with live bids from throwaway keys: a
// fresh key's zero bond needs no collateral, so one client can place tens of thousands of them
// (one live bid per key). The close must still end every bid, pick the honest winner and release
// the honest reservations, in bounded work: no per-bidder lock (the shared lock table holds
// about 6,400 on a default Postgres) and no per-bid round trip. On real Postgres.
import { accounts, type BidToWrite, balanceOf, submitBidBatch } from "@prover-boost/db";
import { getAddress } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAuction } from "../apps/aggregator/src/close-auctions.ts";
import { account, currentSlot, openAuction, signedBid } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { expectLedgerConsistent } from "./support/market-flow.ts";

const FLOOD = 40_000;
const BLOCK = 40;
let stack: Stack;
const honest = [account(0xf100d1), account(0xf100d2), account(0xf100d3), account(0xf100d4)];

beforeAll(async () => {
  stack = await startStack({ aggregator: false });
  for (const h of honest) await stack.admin.deposit(h.address, 100_000n);
});
afterAll(async () => stack?.close());

const balance = (a: string) => stack.db.prisma.$transaction((tx) => balanceOf(tx, a));

/** A throwaway key's zero-bond bid at the auction's fee cap, as the relay would write it. */
const floodBid = (i: number): BidToWrite => ({
  id: `0xf1${i.toString(16).padStart(62, "0")}`,
  blockNumber: BLOCK,
  prover: getAddress(`0x${(0xf1000000 + i).toString(16).padStart(40, "0")}`),
  validUntilSlot: BigInt(currentSlot() + 1000),
  bondAmount: 0n,
  basisPointFee: 3000,
  signature: `0x${"ab".repeat(65)}`,
});

describe("an auction flooded with zero-bond bids from throwaway keys", () => {
  it("closes: the honest best bid wins, every other bid ends, every reservation is released", async () => {
    const now = Date.now();
    const open = await openAuction(BLOCK, {
      minBond: "0",
      maxFeeBps: 3000,
      biddingClosesAt: now + 600_000,
      proofDeadline: now + 1_200_000,
    });
    await stack.client.openAuction(open.auction, open.txs, open.signature);
    // Statistics from before the flood, as autovacuum may not have caught up with a burst.
    await stack.db.prisma.$executeRawUnsafe(`ALTER TABLE "Bid" SET (autovacuum_enabled = false)`);
    await stack.db.prisma.$executeRawUnsafe(`ANALYZE "Bid"`);
    // The last is the cheapest, but its quote is valid only until a slot before the close.
    const fees = [900, 700, 800, 100];
    for (const [i, h] of honest.entries()) {
      const bid = await signedBid(h, BLOCK, {
        bondAmount: "5000",
        basisPointFee: fees[i]!,
        ...(i === 3 ? { validUntilSlot: currentSlot() + 2 } : {}),
      });
      expect((await stack.client.submitBid(bid.quote, bid.signature)).status).toBe("accepted");
    }
    for (let from = 0; from < FLOOD; from += 2000) {
      const batch = Array.from({ length: Math.min(2000, FLOOD - from) }, (_, k) =>
        floodBid(from + k),
      );
      const out = await stack.db.prisma.$transaction((tx) => submitBidBatch(tx, batch, now));
      expect(out.every((o) => o.outcome === "accepted")).toBe(true);
    }
    expect(
      await stack.db.prisma.bid.count({ where: { blockNumber: BLOCK, status: "active" } }),
    ).toBe(FLOOD + honest.length);
    // Each bid write finds the bid it replays or replaces, and its prover's live bid on the
    // auction, by index, whatever the statistics say (a plan cached while the table was small):
    // rows read stay a few per bid, not every live bid of the auction per bid.
    const read = await eventually(async () => {
      const [row] = await stack.db.prisma.$queryRaw<
        { inserted: bigint; seq: bigint | null; idx: bigint | null }[]
      >`SELECT n_tup_ins AS inserted, seq_tup_read AS seq, idx_tup_fetch AS idx
        FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'Bid'`;
      return row && row.inserted >= BigInt(FLOOD) ? row : undefined;
    }, 60_000); // a backend reports its counts when idle, up to some ten seconds late
    expect(Number((read.seq ?? 0n) + (read.idx ?? 0n))).toBeLessThan(10 * FLOOD);

    await closeAuction(stack.aggregator.ctx, BLOCK, now + 600_000);

    const auction = await stack.db.prisma.auction.findUniqueOrThrow({
      where: { blockNumber: BLOCK },
    });
    expect(auction.status).toBe("committed");
    const winner = await stack.db.prisma.bid.findUniqueOrThrow({
      where: { id: auction.winnerBidId! },
    });
    expect(winner.prover).toBe(honest[1]!.address);
    expect(winner.status).toBe("won");
    // First price by default: the winner's own fee.
    expect(auction.settlementFeeBps).toBe(700);
    const statuses = await stack.db.prisma.bid.groupBy({
      by: ["status"],
      where: { blockNumber: BLOCK },
      _count: true,
    });
    expect(Object.fromEntries(statuses.map((s) => [s.status, s._count]))).toEqual({
      won: 1,
      lost: FLOOD + honest.length - 2,
      expired: 1,
    });
    expect(await balance(accounts.locked(honest[1]!.address))).toBe(5000n);
    for (const h of honest) expect(await balance(accounts.reserved(h.address))).toBe(0n);
    expect(await balance(accounts.available(honest[0]!.address))).toBe(100_000n);
    // A zero bond moves nothing: no movement for the flood's bids.
    const movements = await stack.db.prisma.ledgerEntry.count({ where: { blockNumber: BLOCK } });
    expect(movements).toBe(2 * 2 * honest.length);
    await expectLedgerConsistent(stack.db.prisma);
  }, 240_000);
});
