// A quote's validUntilSlot is a uint256, as EpochProofQuote signs it, and so is an auction's
// slot. A prover may sign one far beyond every slot (2^64 - 1, or 2^256 - 1: "never expires");
// the relay used to refuse anything above 2^53 with a good signature. Now such a bid is accepted, listed with its exact value (a
// decimal string, since a JSON number would lose digits), its signature verifies against what
// is listed, and it can win.

import { auctionTypedData, quoteTypedData } from "@prover-boost/core";
import { auctionMessage, quoteMessage } from "@prover-boost/sdk";
import { recoverTypedDataAddress } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, domain, openAuction, signedBid } from "./fixtures.ts";
import { eventually, type Stack, sequencer, startStack } from "./harness.ts";

const BLOCK = 71;
const forever = account(0xf1);
const long = account(0xf2);
const MAX_UINT256 = (2n ** 256n - 1n).toString();
const MAX_UINT64 = (2n ** 64n - 1n).toString();

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
  await stack.admin.deposit(forever.address, 1_000_000n);
  await stack.admin.deposit(long.address, 1_000_000n);
});
afterAll(async () => stack?.close());

/** The address that signed `quote` (as the relay lists it) with `signature`. */
const signerOf = (quote: Parameters<typeof quoteMessage>[0], signature: string) =>
  recoverTypedDataAddress({
    ...quoteTypedData(domain, quoteMessage(quote)),
    signature: signature as `0x${string}`,
  });

describe("a quote valid until a slot beyond 2^53", () => {
  it("is accepted, listed exactly, verifiable from the listing, and can win", async () => {
    const biddingClosesAt = Date.now() + 3000;
    // The auction's slot is a uint256 too (ProvingAuction signs it as one).
    const o = await openAuction(BLOCK, {
      slot: MAX_UINT64,
      biddingClosesAt,
      proofDeadline: biddingClosesAt + 60_000,
    });
    await stack.client.openAuction(o.auction, o.txs, o.signature);
    const opened = await stack.client.getAuction(BLOCK);
    expect(opened.slot).toBe(MAX_UINT64);
    const auctionSigner = await recoverTypedDataAddress({
      ...auctionTypedData(domain, auctionMessage(opened)),
      signature: o.signature as `0x${string}`,
    });
    expect(auctionSigner).toBe(sequencer.address);
    const cheapest = await signedBid(forever, BLOCK, {
      basisPointFee: 100,
      validUntilSlot: MAX_UINT256,
    });
    const other = await signedBid(long, BLOCK, { basisPointFee: 200, validUntilSlot: MAX_UINT64 });
    for (const b of [cheapest, other]) {
      expect((await stack.client.submitBid(b.quote, b.signature)).status).toBe("accepted");
    }

    const closed = await eventually(async () => {
      const a = await stack.client.getAuction(BLOCK);
      return a.status !== "open" ? a : null;
    }, 30_000);
    expect(closed.status).toBe("committed");
    const winner = closed.winner!;
    expect(winner.quote).toMatchObject({ prover: forever.address, validUntilSlot: MAX_UINT256 });
    expect(await signerOf(winner.quote, winner.signature)).toBe(forever.address);

    // Unsealed once the auction is closed: each bid as signed, its signature checkable.
    const listed = (await stack.client.listBids({ block: BLOCK })).items;
    expect(Object.fromEntries(listed.map((b) => [b.prover, [b.validUntilSlot, b.status]]))).toEqual(
      { [forever.address]: [MAX_UINT256, "won"], [long.address]: [MAX_UINT64, "lost"] },
    );
    for (const b of listed) {
      const quote = { ...b, epochToProve: b.blockNumber, prover: b.prover };
      expect(await signerOf(quote, b.signature)).toBe(b.prover);
    }
  });
});
