// Attack: win with a quote that will have expired when the auction closes (the cheapest fee, a
// quote Aztec would refuse to claim). On main closing took every active bid without rechecking
// validUntilSlot: the expired quote won. Now it is marked `expired`, its bond released, and
// the next valid bid wins.
import { accounts } from "@prover-boost/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, signedBid } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { balance, expectLedgerConsistent } from "./support/market-flow.ts";

// Long slots so that the close lies several slots after the bids, whatever the machine's speed.
const SLOT_MS = 5000;
const BLOCK = 70;
const cheap = account(0xe1);
const honest = account(0xe2);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { SLOT_DURATION_MS: String(SLOT_MS) } });
  await stack.admin.deposit(cheap.address, 1_000_000n);
  await stack.admin.deposit(honest.address, 1_000_000n);
});
afterAll(async () => stack?.close());

describe("quotes expired at close", () => {
  it("a quote valid when bid but expired at the close slot cannot win", async () => {
    const now = Date.now();
    const biddingClosesAt = now + 4 * SLOT_MS;
    const closeSlot = Math.floor(biddingClosesAt / SLOT_MS);
    const o = await openAuction(BLOCK, {
      biddingClosesAt,
      proofDeadline: biddingClosesAt + 60_000,
    });
    await stack.client.openAuction(o.auction, o.txs, o.signature);
    // Valid for at least two more slots from now (accepted), but not in the close slot.
    const expiring = await signedBid(cheap, BLOCK, {
      basisPointFee: 100,
      bondAmount: "5000",
      validUntilSlot: closeSlot - 1,
    });
    const valid = await signedBid(honest, BLOCK, {
      basisPointFee: 2000,
      bondAmount: "4000",
      validUntilSlot: closeSlot + 100,
    });
    expect((await stack.client.submitBid(expiring.quote, expiring.signature)).status).toBe(
      "accepted",
    );
    expect((await stack.client.submitBid(valid.quote, valid.signature)).status).toBe("accepted");

    const closed = await eventually(async () => {
      const a = await stack.client.getAuction(BLOCK);
      return a.status !== "open" ? a : null;
    }, 8 * SLOT_MS);
    expect(closed.status).toBe("committed");
    expect(closed.winner?.quote.prover).toBe(honest.address);
    expect(closed.settlementFeeBps).toBe(2000);
    expect(closed.bidCount).toBe(2);
    const bids = await stack.db.prisma.bid.findMany({ where: { blockNumber: BLOCK } });
    expect(Object.fromEntries(bids.map((b) => [b.prover, b.status]))).toEqual({
      [cheap.address]: "expired",
      [honest.address]: "won",
    });
    // The expired quote's bond is free again; the winner's is locked.
    expect(await balance(stack.db.prisma, accounts.reserved(cheap.address))).toBe(0n);
    expect(await balance(stack.db.prisma, accounts.available(cheap.address))).toBe(1_000_000n);
    expect(await balance(stack.db.prisma, accounts.locked(honest.address))).toBe(4000n);
    await expectLedgerConsistent(stack.db.prisma);
  });
});
