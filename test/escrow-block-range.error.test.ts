// An escrow event the market cannot represent (COLLATERAL=chain): the contract takes any uint256
// block number, the market's blocks stop at 2^31-1 (Postgres int4). A sequencer funding a block
// beyond that must not stop the index for good (every later deposit and withdrawal unbooked,
// bids refused with L1_UNAVAILABLE): the event is recorded, booked nowhere, logged as an error
// with its transaction, and the index keeps going. The reward it escrowed goes back to its
// sequencer (the settler owes the escrow a refundReward), and the ledger credits that refund, so
// the sequencer's balances agree on both sides.
import { type EscrowIndexer, reconcileEscrow } from "@prover-boost/chain";
import { escrowAbi } from "@prover-boost/escrow";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, signedBid } from "./fixtures.ts";
import { type Stack, sequencer, startStack } from "./harness.ts";
import { indexerOn, type L1, startL1, walletOn } from "./support/l1.ts";

const DEPOSIT = 10n ** 15n;
const INT4_MAX = 2n ** 31n - 1n;

describe("an escrow event with a block number beyond the market's", () => {
  let l1: L1;
  let stack: Stack;
  const errors: { o: Record<string, unknown>; m: string | undefined }[] = [];
  let index: EscrowIndexer;

  beforeAll(async () => {
    l1 = await startL1();
    stack = await startStack({ env: l1.env, aggregator: false });
    await l1.fund(sequencer.address);
    // The relay's own index is stopped; this one (same escrow, same cursor) keeps its log.
    await stack.relay.ctx.escrowIndex!.stop();
    index = indexerOn(stack, l1, {
      info: () => {},
      warn: () => {},
      error: (o, m) => errors.push({ o: o as Record<string, unknown>, m }),
    });
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    await l1?.stop();
  });

  async function fundReward(blockNumber: bigint, amount: bigint) {
    const hash = await walletOn(l1, sequencer).writeContract({
      address: l1.escrow,
      abi: escrowAbi,
      functionName: "fundReward",
      args: [blockNumber],
      value: amount,
    });
    const r = await l1.client.waitForTransactionReceipt({ hash });
    expect(r.status).toBe("success");
    return hash;
  }

  const blockInfo = (n: bigint) =>
    l1.client.readContract({
      address: l1.escrow,
      abi: escrowAbi,
      functionName: "blockInfo",
      args: [n],
    });

  it("is skipped and logged, the index keeps booking, bids are served, and the reward is refunded", async () => {
    const prover = account(0xe1);
    await l1.fund(prover.address);
    const far = INT4_MAX + 1n;
    const farthest = 2n ** 256n - 1n;
    const farTx = await fundReward(far, 7000n);
    const farthestTx = await fundReward(farthest, 9000n);
    // Zero rewards are allowed too: nothing to give back.
    await fundReward(INT4_MAX + 2n, 0n);
    // Later, in range: a deposit and a funded block the market can use.
    await l1.deposit(prover, DEPOSIT);
    await l1.fundReward(sequencer, 3, 1000n);

    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    // Every log is recorded, the unrepresentable ones without a movement.
    const funded = await stack.db.prisma.chainLog.findMany({
      where: { event: "RewardFunded" },
      orderBy: [{ blockNumber: "asc" }, { logIndex: "asc" }],
    });
    expect(
      funded.map((l) => [(l.args as { blockNumber: string }).blockNumber, l.movementId]),
    ).toEqual([
      [String(far), null],
      [String(farthest), null],
      [String(INT4_MAX + 2n), null],
      ["3", expect.stringMatching(/^l1:/)],
    ]);
    // Logged as errors, with their transactions.
    expect(errors.map((e) => [e.o.code, e.o.blockNumber, e.o.txHash])).toEqual([
      ["L1_EVENT_UNREPRESENTABLE", String(far), farTx],
      ["L1_EVENT_UNREPRESENTABLE", String(farthest), farthestTx],
      ["L1_EVENT_UNREPRESENTABLE", String(INT4_MAX + 2n), expect.stringMatching(/^0x/)],
    ]);
    expect(errors[0]!.m).toMatch(/not booked/);
    // The later deposit is booked, and the relay serves bids.
    expect(BigInt((await stack.client.getProver(prover.address)).collateral.available)).toBe(
      DEPOSIT,
    );
    await stack.relay.ctx.escrowIndex!.poll();
    const open = await openAuction(3, { blockReward: "1000" });
    await stack.client.openAuction(open.auction, open.txs, open.signature);
    const bid = await signedBid(prover, 3, { bondAmount: (DEPOSIT / 2n).toString() });
    expect((await stack.client.submitBid(bid.quote, bid.signature)).status).toBe("accepted");

    // The settler gives the escrowed rewards back to the sequencer (the market will never settle
    // those blocks), once.
    const refunds = await stack.db.prisma.settlement.findMany({
      where: { kind: "refund" },
      orderBy: { id: "asc" },
    });
    expect(refunds.map((r) => [r.key, r.status])).toEqual([
      [`refund:${far}`, "pending"],
      [`refund:${farthest}`, "pending"],
    ]);
    await stack.db.prisma.settlement.updateMany({ data: { nextAttemptAt: 0n } });
    await stack.aggregator.settler!.run();
    await stack.aggregator.settler!.run();
    const sent = await stack.db.prisma.settlement.findMany({
      where: { kind: "refund" },
      orderBy: { id: "asc" },
    });
    expect(sent.map((r) => r.status)).toEqual(["confirmed", "confirmed"]);
    expect((await blockInfo(far))[0]).toBe(3); // Refunded
    expect((await blockInfo(farthest))[0]).toBe(3);
    expect((await blockInfo(INT4_MAX + 2n))[0]).toBe(1); // Funded with nothing: left as it is

    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    const [s, p] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [
      sequencer.address,
      prover.address,
    ]);
    expect(s!.chain.free).toBe(7000n + 9000n);
    expect(s!.ledger).toEqual(s!.chain);
    expect(p!.ledger).toEqual(p!.chain);
    // The index still moves on.
    await l1.deposit(prover, DEPOSIT);
    await index.poll();
    const [p2] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [prover.address]);
    expect(p2!.chain.free).toBe(DEPOSIT * 2n);
    expect(p2!.ledger).toEqual(p2!.chain);
  });
});
