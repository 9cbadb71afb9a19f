// Property-based test of the relay's batched bid write (pb_submit_bids through submitBidBatch)
// against a real Postgres and the embedded PGlite. Random batches of bids (replays and
// replacements inside one batch, several bids of one prover competing for its collateral, closed
// and unknown auctions, zero bonds) are written batch by batch; a plain in-memory model applies
// the same bids one at a time, in order, by the market's rules. Every outcome, every bid's stored
// status and every balance must match the model, and the ledger must stay balanced.
import {
  accounts,
  applyMovement,
  type BidToWrite,
  type BidWriteOutcome,
  type Database,
  submitBidBatch,
} from "@prover-boost/db";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import {
  DATABASE_BACKENDS,
  openScratchDatabase,
  type ScratchDatabase,
} from "./support/databases.ts";
import { expectLedgerConsistent } from "./support/market-flow.ts";

const NOW = 1_000_000;
const provers = [account(0x501), account(0x502), account(0x503)].map((a) => a.address);
// Block 1 and 2 are open, 3 is committed (closed), 4 is open but past its bidding close, 5 does not exist.
const auctions = [
  { blockNumber: 1, status: "open", biddingClosesAt: NOW + 60_000 },
  { blockNumber: 2, status: "open", biddingClosesAt: NOW + 60_000 },
  { blockNumber: 3, status: "committed", biddingClosesAt: NOW + 60_000 },
  { blockNumber: 4, status: "open", biddingClosesAt: NOW },
];

interface Quote {
  block: number;
  prover: number;
  bond: bigint;
  fee: number;
}

// Few distinct values, so identical quotes (replays) and same-auction quotes (replacements) are
// common. The id stands for the quote's digest: equal quotes, equal ids.
const quoteArb = fc.record({
  block: fc.integer({ min: 1, max: 5 }),
  prover: fc.integer({ min: 0, max: provers.length - 1 }),
  bond: fc.constantFrom(0n, 10n, 25n, 40n),
  fee: fc.integer({ min: 1, max: 2 }),
});
const scenarioArb = fc.record({
  deposits: fc.array(fc.constantFrom(0n, 30n, 60n, 100n), {
    minLength: provers.length,
    maxLength: provers.length,
  }),
  batches: fc.array(fc.array(quoteArb, { minLength: 1, maxLength: 12 }), {
    minLength: 1,
    maxLength: 5,
  }),
});

const idOf = (q: Quote) => `q:${q.block}:${q.prover}:${q.bond}:${q.fee}`;
const toWrite = (q: Quote): BidToWrite => ({
  id: idOf(q),
  blockNumber: q.block,
  prover: provers[q.prover]!,
  validUntilSlot: 99n,
  bondAmount: q.bond,
  basisPointFee: q.fee,
  signature: `0x${"ab".repeat(65)}`,
});

/** The market's bid rules, one bid at a time. */
class Model {
  available: bigint[];
  reserved: bigint[];
  bids = new Map<string, { status: string; prover: number; bond: bigint }>();
  active = new Map<string, string>();

  constructor(deposits: bigint[]) {
    this.available = [...deposits];
    this.reserved = deposits.map(() => 0n);
  }

  submit(q: Quote): BidWriteOutcome {
    const auction = auctions.find((a) => a.blockNumber === q.block);
    if (!auction) return { outcome: "AUCTION_NOT_FOUND" };
    if (auction.status !== "open" || NOW >= auction.biddingClosesAt) {
      return { outcome: "AUCTION_CLOSED" };
    }
    const id = idOf(q);
    const existing = this.bids.get(id);
    if (existing) return { outcome: existing.status === "active" ? "replay" : "BID_SUPERSEDED" };
    const key = `${q.block}:${q.prover}`;
    const prevId = this.active.get(key);
    const prev = prevId ? this.bids.get(prevId) : undefined;
    const free = this.available[q.prover]! + (prev?.bond ?? 0n);
    if (free < q.bond) return { outcome: "INSUFFICIENT_COLLATERAL", shortBy: q.bond - free };
    if (prev) {
      prev.status = "replaced";
      this.available[q.prover]! += prev.bond;
      this.reserved[q.prover]! -= prev.bond;
    }
    this.available[q.prover]! -= q.bond;
    this.reserved[q.prover]! += q.bond;
    this.bids.set(id, { status: "active", prover: q.prover, bond: q.bond });
    this.active.set(key, id);
    return { outcome: "accepted" };
  }
}

describe.each(DATABASE_BACKENDS)("batched bid writes on %s", (backend) => {
  let scratch: ScratchDatabase | undefined;
  let db: Database;

  beforeAll(async () => {
    scratch = await openScratchDatabase(backend, "bidbatch");
    db = scratch.db;
    for (const a of auctions) {
      await db.prisma.auction.create({
        data: {
          blockNumber: a.blockNumber,
          slot: 1,
          txCount: 1,
          txsHash: "0x",
          txs: [],
          blockReward: "1000",
          minBond: "0",
          maxFeeBps: 5000,
          biddingClosesAt: BigInt(a.biddingClosesAt),
          proofDeadline: BigInt(a.biddingClosesAt + 60_000),
          sequencer: provers[0]!,
          signature: "0x",
          status: a.status,
          createdAt: 1n,
        },
      });
    }
  });
  afterAll(async () => {
    await scratch?.close();
  });

  it("matches the market's rules applied one bid at a time", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ deposits, batches }) => {
        await db.sql.exec(
          `TRUNCATE "Bid", "Prover", "LedgerEntry", "AccountBalance" RESTART IDENTITY`,
        );
        for (const [i, amount] of deposits.entries()) {
          if (amount === 0n) continue;
          await applyMovement(db.prisma, {
            kind: "deposit",
            legs: [
              { account: accounts.deposits, amount: -amount },
              { account: accounts.available(provers[i]!), amount },
            ],
            nowMs: 1,
          });
        }
        const model = new Model(deposits);
        for (const batch of batches) {
          const outcomes = await submitBidBatch(db.prisma, batch.map(toWrite), NOW);
          expect(outcomes).toEqual(batch.map((q) => model.submit(q)));
        }
        const stored = await db.prisma.bid.findMany({ orderBy: { id: "asc" } });
        expect(stored.map((b) => [b.id, b.status, BigInt(b.bondAmount.toFixed())])).toEqual(
          [...model.bids]
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([id, b]) => [id, b.status, b.bond]),
        );
        const balances = new Map(
          (await db.prisma.accountBalance.findMany()).map((b) => [
            b.account,
            BigInt(b.balance.toFixed()),
          ]),
        );
        for (const [i, p] of provers.entries()) {
          expect(balances.get(accounts.available(p)) ?? 0n).toBe(model.available[i]);
          expect(balances.get(accounts.reserved(p)) ?? 0n).toBe(model.reserved[i]);
        }
        // Every prover with an accepted bid is known; no one else is.
        const known = (await db.prisma.prover.findMany()).map((p) => p.address).sort();
        expect(known).toEqual(
          [...new Set([...model.bids.values()].map((b) => provers[b.prover]!))].sort(),
        );
        await expectLedgerConsistent(db.prisma);
      }),
      { numRuns: backend === "postgres" ? 60 : 30 },
    );
  });
});
