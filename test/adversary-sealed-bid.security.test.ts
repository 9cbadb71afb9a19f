// Attack: learn a rival's sealed bond while its auction is open. On main, GET /v1/provers/{a}
// answered `collateral.reserved: "777777"` (the live bond) as soon as the bid was accepted.
// Now no public view carries the bond or lets it be derived until the auction closes; after the
// close the winner's bond is public (locked) and the bids are listed. Refusals do not measure
// live bids either.
import { accounts, chargePenalty } from "@prover-boost/db";
import type { ProverView } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, signedBid } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";
import { balance, getJson, openUnclaimed } from "./support/market-flow.ts";

const BLOCK = 41;
const BOND = 777_777n;
const DEPOSIT = 10_000_000n;
const bidder = account(0x5ea1);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
  await stack.admin.deposit(bidder.address, DEPOSIT);
  const open = await openAuction(BLOCK);
  await stack.client.openAuction(open.auction, open.txs, open.signature);
  // An older, already closed auction, so the list endpoints have something to list.
  await openUnclaimed(stack, BLOCK - 1);
  const bid = await signedBid(bidder, BLOCK, { bondAmount: BOND.toString() });
  await stack.client.submitBid(bid.quote, bid.signature);
  const other = await openAuction(BLOCK + 1);
  await stack.client.openAuction(other.auction, other.txs, other.signature);
});
afterAll(async () => stack?.close());

describe("sealed bids", () => {
  it("no public view reveals a live bid's bond", async () => {
    // The reservation is real (the ledger holds it)...
    expect(await balance(stack.db.prisma, accounts.reserved(bidder.address))).toBe(BOND);
    // ...but the prover view shows no part of the deposit as set aside for it.
    const view = await getJson<ProverView>(stack, `/v1/provers/${bidder.address}`);
    expect(view.collateral).not.toHaveProperty("reserved");
    const c = view.collateral;
    const derived =
      BigInt(c.deposited) - BigInt(c.available) - BigInt(c.locked) - BigInt(c.slashed);
    expect(derived).toBe(0n);
    expect(c.available).toBe(DEPOSIT.toString());
    // Nor does any other public view carry the bond while the auction is open.
    for (const path of [
      `/v1/provers/${bidder.address}`,
      `/v1/auctions/${BLOCK}`,
      "/v1/data/auctions",
      `/v1/data/bids?prover=${bidder.address}`,
      `/v1/data/bids?block=${BLOCK}`,
      `/v1/blocks/${BLOCK}`,
    ]) {
      const res = await fetch(`${stack.url}${path}`);
      const text = await res.text();
      expect(text, path).not.toContain(BOND.toString());
      expect(text, path).not.toContain((DEPOSIT - BOND).toString());
    }
  });

  it("a refusal for want of collateral does not say by how much (that would be the bond)", async () => {
    // Anyone holding a prover's signed quote may submit it; the answer must not measure the
    // prover's other live bids. Main answered "short of the bond by 777776 wei".
    const big = await signedBid(bidder, BLOCK + 1, { bondAmount: (DEPOSIT - 1n).toString() });
    const res = await stack.relay.app.inject({ method: "POST", url: "/v1/bids", payload: big });
    expect(res.statusCode).toBe(422);
    expect(JSON.parse(res.body).error.code).toBe("INSUFFICIENT_COLLATERAL");
    expect(res.body).not.toContain((BOND - 1n).toString());
    expect(JSON.parse(res.body).error.message).not.toMatch(/\d/);
  });

  it("a penalty larger than the unreserved collateral does not measure live bids, nor spare them", async () => {
    // A second bidder with a live bid, then a penalty charged against it for more than its
    // collateral outside that bid. On main the penalty took DEPOSIT - BOND (public in the
    // penalty's row and on the escrow), so the bond could be read off it, and the bid kept the
    // rest out of the penalty's reach.
    const other = account(0x5ea2);
    await stack.admin.deposit(other.address, DEPOSIT);
    const bid = await signedBid(other, BLOCK + 1, { bondAmount: BOND.toString() });
    expect((await stack.client.submitBid(bid.quote, bid.signature)).status).toBe("accepted");
    const taken = await stack.db.prisma.$transaction((tx) =>
      chargePenalty(tx, {
        kind: "withholding",
        blockNumber: BLOCK + 1,
        operator: other.address,
        maxWei: DEPOSIT,
        nowMs: Date.now(),
      }),
    );
    // The whole deposit: a figure the public had already.
    expect(taken).toBe(DEPOSIT);
    const row = await stack.db.prisma.bid.findFirstOrThrow({ where: { prover: other.address } });
    expect(row.status).toBe("unfunded");
    expect(await balance(stack.db.prisma, accounts.reserved(other.address))).toBe(0n);
    expect(await balance(stack.db.prisma, accounts.available(other.address))).toBe(0n);
    // The first bidder's live bid is untouched.
    expect(await balance(stack.db.prisma, accounts.reserved(bidder.address))).toBe(BOND);
  });
});
