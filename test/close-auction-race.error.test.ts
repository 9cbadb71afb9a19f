// The aggregator's auction close against a writer that ends a prover's live bids in the same
// moment (the escrow index's cancelLiveBids: the L1 took back the collateral they relied on).
// The close takes the bidders' market locks before it reads their bids, so a bid ended and
// released by the other transaction is not closed (and its reservation released) a second time,
// even when the prover's reservations were refilled meanwhile. On real Postgres.
import { accounts, applyMovement, balanceOf, cancelLiveBids } from "@prover-boost/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlockRetries } from "../apps/aggregator/src/block-retries.ts";
import { closeAuction, closeDueAuctions } from "../apps/aggregator/src/close-auctions.ts";
import { account, openAuction, signedBid } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { blockedBy } from "./support/locks.ts";

const BOND = 5000n;
let stack: Stack;
const prover = account(0xc105e);

beforeAll(async () => {
  stack = await startStack({ aggregator: false });
  await stack.admin.deposit(prover.address, 100_000n);
});
afterAll(async () => stack?.close());

const balance = (a: string) => stack.db.prisma.$transaction((tx) => balanceOf(tx, a));

describe("an auction closed while the prover's live bids are ended", () => {
  it("does not close (or release) a bid the other transaction ended, even with the reservations refilled", async () => {
    const now = Date.now();
    const open = await openAuction(10, {
      blockReward: "1000",
      biddingClosesAt: now + 600_000,
      proofDeadline: now + 1_200_000,
    });
    await stack.client.openAuction(open.auction, open.txs, open.signature);
    const bid = await signedBid(prover, 10, { bondAmount: BOND.toString() });
    expect((await stack.client.submitBid(bid.quote, bid.signature)).status).toBe("accepted");
    expect(await balance(accounts.reserved(prover.address))).toBe(BOND);

    // The other transaction: ends the bid (releasing its reservation), and the prover's next bid
    // elsewhere reserves as much again; held open while the close starts.
    let commit!: () => void;
    const held = new Promise<void>((r) => {
      commit = r;
    });
    let ended: string[] = [];
    let holder = 0;
    const other = stack.db.prisma.$transaction(
      async (tx) => {
        holder = (await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`)[0]!.pid;
        ended = await cancelLiveBids(tx, prover.address, Date.now());
        await applyMovement(tx, {
          kind: "reserve",
          legs: [
            { account: accounts.available(prover.address), amount: -BOND },
            { account: accounts.reserved(prover.address), amount: BOND },
          ],
          nowMs: Date.now(),
        });
        await held;
      },
      { timeout: 30_000 },
    );
    await eventually(async () => ended.length === 1);
    const closing = closeAuction(stack.aggregator.ctx, 10, Date.now());
    // The close is held up by the other transaction (on its lock), then goes on once it commits.
    await eventually(async () => (await blockedBy(stack.db.prisma, holder)) > 0);
    commit();
    await other;
    await closing;

    const row = await stack.db.prisma.bid.findFirstOrThrow({ where: { blockNumber: 10 } });
    expect(row.status).toBe("unfunded");
    const auction = await stack.db.prisma.auction.findUniqueOrThrow({ where: { blockNumber: 10 } });
    expect(auction.status).toBe("unclaimed");
    // The refilled reservation is the next bid's, untouched; nothing was locked.
    expect(await balance(accounts.reserved(prover.address))).toBe(BOND);
    expect(await balance(accounts.locked(prover.address))).toBe(0n);
    expect(await balance(accounts.available(prover.address))).toBe(100_000n - BOND);
  });
});

describe("an auction that cannot close", () => {
  it("does not hold up the auctions due after it", async () => {
    const stuck = account(0xc105f);
    await stack.admin.deposit(stuck.address, 100_000n);
    const now = Date.now();
    for (const n of [20, 21]) {
      const open = await openAuction(n, {
        blockReward: "1000",
        biddingClosesAt: now + 5000 + (n - 20) * 100,
        proofDeadline: now + 1_200_000,
      });
      await stack.client.openAuction(open.auction, open.txs, open.signature);
    }
    const bid = await signedBid(stuck, 20, { bondAmount: BOND.toString() });
    expect((await stack.client.submitBid(bid.quote, bid.signature)).status).toBe("accepted");
    // Block 20's bid lost its reservation behind the market's back: its close fails every time.
    await stack.db.prisma.$transaction((tx) =>
      applyMovement(tx, {
        kind: "release",
        legs: [
          { account: accounts.reserved(stuck.address), amount: -BOND },
          { account: accounts.available(stuck.address), amount: BOND },
        ],
        nowMs: Date.now(),
      }),
    );
    await eventually(async () => Date.now() > now + 5200, 15_000);
    const retries = new BlockRetries();
    const pass = Date.now();
    await closeDueAuctions(stack.aggregator.ctx, retries);
    // Left out of the passes until its wait is over.
    expect(retries.waiting(pass)).toEqual([20]);
    const status = async (n: number) =>
      (await stack.db.prisma.auction.findUniqueOrThrow({ where: { blockNumber: n } })).status;
    expect(await status(20)).toBe("open");
    expect(await status(21)).toBe("unclaimed");
  });
});
