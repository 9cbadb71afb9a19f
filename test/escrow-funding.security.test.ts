// Attack: in COLLATERAL=chain, a sequencer opens auctions whose reward is not on the escrow. The
// winner's bond would be locked in the ledger while the escrow refuses the lock (BlockNotFunded)
// and the payout would wait forever: provers' bonds locked for free. Or the reward is funded by
// another address than the auction's sequencer, and a slash share would go to one address on the
// escrow and to another in the ledger. The relay opens an auction only on a block whose reward
// the index has booked (confirmed), funded by the auction's own sequencer with at least its
// blockReward, and not closed on the escrow since; otherwise 422 REWARD_NOT_FUNDED and nothing
// is written.
import { anvilAccount, escrowAbi } from "@prover-boost/escrow";
import type { Hash } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, snapshot } from "./fixtures.ts";
import { eventually, type Stack, sequencer, startStack } from "./harness.ts";
import { relayError } from "./support/blocks.ts";
import { fundIndexedReward, type L1, settlerAccount, startL1, walletOn } from "./support/l1.ts";

const REWARD = 10n ** 15n;
// Another sequencer registered on the escrow and allowed by the relay.
const other = account(0x5e2);

describe("opening an auction in chain mode", () => {
  let l1: L1;
  let stack: Stack;

  beforeAll(async () => {
    l1 = await startL1();
    stack = await startStack({
      env: { ...l1.env, SEQUENCERS: `${sequencer.address},${other.address}` },
      aggregator: false,
    });
    await l1.fund(sequencer.address);
    await l1.fund(other.address);
    const owner = walletOn(l1, anvilAccount(0));
    await waitOk(
      l1,
      await owner.writeContract({
        address: l1.escrow,
        abi: escrowAbi,
        functionName: "setSequencer",
        args: [other.address, true],
      }),
    );
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    await l1?.stop();
  });

  async function open(block: number, reward: bigint, signer = sequencer) {
    const now = Date.now();
    const o = await openAuction(
      block,
      {
        blockReward: reward.toString(),
        biddingClosesAt: now + 600_000,
        proofDeadline: now + 1_200_000,
      },
      signer,
    );
    return stack.client.openAuction(o.auction, o.txs, o.signature);
  }

  async function refused(block: number, reward: bigint, signer = sequencer) {
    const before = await snapshot(stack);
    expect(await relayError(open(block, reward, signer))).toEqual({
      status: 422,
      code: "REWARD_NOT_FUNDED",
    });
    expect(await stack.db.prisma.auction.count({ where: { blockNumber: block } })).toBe(0);
    expect(await stack.db.prisma.block.count({ where: { number: block } })).toBe(0);
    expect(await snapshot(stack)).toEqual(before);
  }

  it("refuses a block whose reward is not funded on the escrow, writing nothing", async () => {
    // The index is live and in step: the refusal is about the block, not a lagging L1.
    await eventually(async () => stack.relay.ctx.escrowIndex!.status.ok);
    await refused(1, REWARD);
  });

  it("refuses a block funded by another address than the auction's sequencer", async () => {
    await fundIndexedReward(stack, l1, 2, REWARD, other);
    await refused(2, REWARD);
    // The funder itself may open it.
    const view = await open(2, REWARD, other);
    expect(view.auction.sequencer).toBe(other.address);
  });

  it("refuses a blockReward above the funded amount, and opens it at the funded amount", async () => {
    await fundIndexedReward(stack, l1, 3, REWARD - 1n);
    await refused(3, REWARD);
    const view = await open(3, REWARD - 1n);
    expect([view.auction.blockNumber, view.auction.blockReward, view.auction.sequencer]).toEqual([
      3,
      (REWARD - 1n).toString(),
      sequencer.address,
    ]);
  });

  it("opens an auction on a block its sequencer funded with at least its reward", async () => {
    await fundIndexedReward(stack, l1, 4, REWARD * 2n);
    const view = await open(4, REWARD);
    expect([view.auction.blockNumber, view.auction.blockReward, view.auction.status]).toEqual([
      4,
      REWARD.toString(),
      "open",
    ]);
    const row = await stack.db.prisma.auction.findUniqueOrThrow({ where: { blockNumber: 4 } });
    expect(row.sequencer).toBe(sequencer.address);
    // Sent again, it is still the same auction that exists.
    expect(await relayError(open(4, REWARD))).toEqual({ status: 409, code: "AUCTION_EXISTS" });
  });

  it("refuses a block whose reward the escrow has refunded already", async () => {
    await fundIndexedReward(stack, l1, 5, REWARD);
    const settler = walletOn(l1, settlerAccount);
    await waitOk(
      l1,
      await settler.writeContract({
        address: l1.escrow,
        abi: escrowAbi,
        functionName: "refundReward",
        args: [5n],
      }),
    );
    await eventually(async () => (await stack.relay.ctx.escrowIndex!.rewardFunding(5))?.closed);
    await refused(5, REWARD);
  });
});

async function waitOk(l1: L1, hash: Hash) {
  const r = await l1.client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
  if (r.status !== "success") throw new Error(`transaction ${hash} reverted`);
}
