// The data a real prover needs: the sequencer uploads each transaction's bytes with the auction,
// the relay checks them against the declared hashes (a mismatch is refused and leaves nothing),
// a base job's lease carries its transaction's bytes, and a parent's lease its children's
// accepted outputs.

import { txsHash } from "@prover-boost/core";
import { signAuction } from "@prover-boost/sdk";
import { type Hex, keccak256, toHex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, currentSlot, domain } from "./fixtures.ts";
import { eventually, type Stack, sequencer, startStack } from "./harness.ts";
import { relayError, tryLease } from "./support/blocks.ts";
import { proofOf, signIn } from "./support/market-flow.ts";

const operator = account(0xd1);
let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => stack?.close());

function auctionOf(blockNumber: number, txs: Hex[]) {
  const now = Date.now();
  return {
    blockNumber,
    slot: currentSlot(),
    txCount: txs.length,
    txsHash: txsHash(txs),
    blockReward: "1000000000000000000",
    minBond: "1000",
    maxFeeBps: 3000,
    biddingClosesAt: now + 500,
    proofDeadline: now + 600_000,
  };
}

describe("transaction data", () => {
  it("refuses data that does not hash to the declared txs, and stores nothing", async () => {
    const data = [toHex("tx one"), toHex("tx two")];
    const txs = data.map((d) => keccak256(d));
    const auction = auctionOf(41, txs);
    const signature = await signAuction(sequencer, domain, auction);
    for (const wrong of [[data[1]!, data[0]!], [data[0]!], [data[0]!, toHex("tx 2")]]) {
      expect(await relayError(stack.client.openAuction(auction, txs, signature, wrong))).toEqual({
        status: 400,
        code: "TX_DATA_MISMATCH",
      });
    }
    expect(await stack.db.prisma.auction.count({ where: { blockNumber: 41 } })).toBe(0);
    expect(await stack.db.prisma.blockTx.count({ where: { blockNumber: 41 } })).toBe(0);
    expect(await stack.db.prisma.block.count({ where: { number: 41 } })).toBe(0);
  });

  it("hands each base job its transaction's bytes and each parent its children's outputs", async () => {
    const data = [toHex("alpha"), `0x${"ab".repeat(300)}` as Hex, toHex("")];
    const txs = data.map((d) => keccak256(d));
    const auction = auctionOf(42, txs);
    await stack.client.openAuction(
      auction,
      txs,
      await signAuction(sequencer, domain, auction),
      data,
    );
    expect((await stack.client.getAuction(42)).proofSystem).toBe("sim");
    expect(await stack.client.getTx(42, 1)).toEqual({
      blockNumber: 42,
      index: 1,
      hash: txs[1],
      data: data[1],
    });
    await eventually(async () => (await stack.client.getBlock(42)).stage === "open_proving");
    const w = await signIn(stack, operator, "w0");
    const outputs = new Map<string, Hex>();
    const seen = new Set<string>();
    for (let n = 0; n < 5; n++) {
      const r = await eventually(async () => {
        const l = await tryLease(w, 1000);
        return l.status === 200 && "job" in l ? l.job : null;
      });
      expect(r.proofSystem).toBe("sim");
      if (r.type === "base") {
        const i = txs.indexOf(r.inputs[0] as Hex);
        expect(i).toBeGreaterThanOrEqual(0);
        expect(r.txData).toBe(data[i]);
      } else {
        expect(r.txData).toBeUndefined();
        expect(r.children.map((c) => c.output)).toEqual(r.children.map((c) => outputs.get(c.id)));
      }
      const proof = proofOf(r);
      await w.submitResult(r.id, proof);
      outputs.set(r.id, proof);
      seen.add(r.type);
    }
    expect(seen).toEqual(new Set(["base", "merge", "block_root"]));
  });
});
