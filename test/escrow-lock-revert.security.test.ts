// A winner that asks collateral back on the escrow while the winning bond's lock is on its way
// (COLLATERAL=chain), and the lock reaches the escrow first: it reverts there
// (InsufficientFreeBalance). When the index then books the withdrawal, the ledger's bond shrinks
// to what the escrow still has; the escrow must end up with exactly that bond locked, or the
// ledger slashes (and pays the sequencer) a bond the escrow never held. The same when the lock
// was already sent when the index booked the withdrawal, and reverted after. And a withdrawal
// shrinks the bonds whose locks had not reached the escrow, never one the escrow holds.
import { reconcileEscrow } from "@prover-boost/chain";
import { accounts } from "@prover-boost/db";
import { escrowAbi } from "@prover-boost/escrow";
import type { Address } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, signedBid } from "./fixtures.ts";
import { type Stack, sequencer, startStack } from "./harness.ts";
import { type L1, settlerOn, startL1 } from "./support/l1.ts";
import { balance } from "./support/market-flow.ts";

const DEPOSIT = 10n ** 15n; // "100"
const BOND = DEPOSIT / 2n; // "50"
const WITHDRAWN = (DEPOSIT * 3n) / 4n; // "75"
const LEFT = DEPOSIT - WITHDRAWN; // "25"

describe("a bond lock that reverts because a withdrawal reached the escrow first", () => {
  let l1: L1;
  let stack: Stack;
  let clock = Date.now();

  beforeAll(async () => {
    l1 = await startL1();
    // The aggregator's duties and the index are driven by hand, the aggregator on its own clock.
    stack = await startStack({ env: l1.env, aggregator: false });
    await l1.fund(sequencer.address);
    await stack.relay.ctx.escrowIndex!.stop();
    stack.aggregator.ctx.now = () => clock;
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    await l1?.stop();
  });

  const index = () => stack.relay.ctx.escrowIndex!;

  async function poll() {
    await index().poll();
    const status = index().status;
    expect(status.ok ? "" : status.reason).toBe("");
  }

  /** One pass of `settler` over everything owed (written on the aggregator's clock). */
  async function sendOwed(settler = stack.aggregator.settler!) {
    await stack.db.prisma.settlement.updateMany({
      where: { status: "pending" },
      data: { nextAttemptAt: 0n },
    });
    await settler.run();
  }

  const requestWithdrawal = (who: ReturnType<typeof account>, amount: bigint) =>
    l1.requestWithdrawal(who, amount);

  /** Opens block `n` (funded, indexed) closing at `closesAt`; `who` bids `bond` on it. */
  async function openAndBid(
    who: ReturnType<typeof account>,
    n: number,
    bond: bigint,
    closesAt: number,
    deadline: number,
  ) {
    await l1.fundReward(sequencer, n, 1000n);
    await poll();
    const open = await openAuction(n, {
      blockReward: "1000",
      biddingClosesAt: closesAt,
      proofDeadline: deadline,
    });
    await stack.client.openAuction(open.auction, open.txs, open.signature);
    const bid = await signedBid(who, n, { bondAmount: bond.toString() });
    expect((await stack.client.submitBid(bid.quote, bid.signature)).status).toBe("accepted");
  }

  async function closeAt(t: number, n: number, winner: Address) {
    clock = t;
    await stack.aggregator.aggregator.tick();
    expect((await stack.client.getBlock(n)).winner).toBe(winner);
  }

  const blockBond = async (n: number) =>
    (
      await l1.client.readContract({
        address: l1.escrow,
        abi: escrowAbi,
        functionName: "blockInfo",
        args: [BigInt(n)],
      })
    )[4];

  const ledgerBond = async (n: number) =>
    BigInt(
      (
        await stack.db.prisma.block.findUniqueOrThrow({ where: { number: n } })
      ).bondAmount?.toFixed() ?? "0",
    );

  const totalBurned = () =>
    l1.client.readContract({ address: l1.escrow, abi: escrowAbi, functionName: "totalBurned" });

  /** Both sides agree on every balance of `who` and the sequencer, and on the burn. */
  async function agree(who: Address) {
    const rows = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [
      who,
      sequencer.address,
    ]);
    for (const r of rows) expect(r.ledger).toEqual(r.chain);
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(await totalBurned());
    return rows[0]!.chain;
  }

  /** The deadline of block `n` passes: the ledger slashes its bond; the escrow follows. */
  async function missDeadline(deadline: number, n: number) {
    clock = deadline + 600_000;
    await stack.aggregator.aggregator.tick();
    expect((await stack.client.getBlock(n)).stage).toBe("open_proving");
    await sendOwed();
    await poll();
  }

  /**
   * A prover with DEPOSIT on the escrow bids BOND on block `n`, asks WITHDRAWN back on the escrow
   * (the index has not seen it yet), and wins at the close: its lock is owed.
   */
  async function wonThenWithdrew(seed: number, n: number) {
    const racer = account(seed);
    await l1.fund(racer.address);
    await l1.deposit(racer, DEPOSIT);
    const t0 = Date.now();
    await openAndBid(racer, n, BOND, t0 + 60_000, t0 + 120_000);
    await requestWithdrawal(racer, WITHDRAWN);
    await closeAt(t0 + 61_000, n, racer.address);
    return { racer, t0 };
  }

  it("reverted before the index saw the withdrawal: the shrunk bond is locked again, then slashed", async () => {
    const n = 21;
    // The winner asks 75 back on the escrow (the index has not seen it); the auction closes.
    const { racer, t0 } = await wonThenWithdrew(0xe2, n);
    // The settler's lock gets to the escrow first: 50 no longer fits in 25 free.
    await sendOwed();
    const lock = await stack.db.prisma.settlement.findUniqueOrThrow({
      where: { key: `lock:${n}` },
    });
    expect(lock.error ?? "").toMatch(/InsufficientFreeBalance/);
    // The index books the withdrawal: the ledger's bond shrinks to 25, and so does the escrow's.
    await poll();
    expect(await ledgerBond(n)).toBe(LEFT);
    await sendOwed();
    await poll();
    expect(await blockBond(n)).toBe(LEFT);
    expect(await agree(racer.address)).toEqual({ free: 0n, locked: LEFT, pending: WITHDRAWN });
    // A second pass of the settler and the index changes nothing (no second lock).
    await sendOwed();
    await poll();
    expect(await blockBond(n)).toBe(LEFT);
    // The deadline passes: both slash 25, burn and pay the sequencer the same.
    await missDeadline(t0 + 120_000, n);
    expect(await agree(racer.address)).toEqual({ free: 0n, locked: 0n, pending: WITHDRAWN });
    const reverted = await stack.db.prisma.settlement.findMany({
      where: { blockNumber: n, status: "reverted" },
    });
    expect(reverted).toEqual([]);
  });

  it("reverted, and its slash too, before the index saw the withdrawal: both are sent again, for the shrunk bond", async () => {
    const n = 23;
    const { racer, t0 } = await wonThenWithdrew(0xe5, n);
    await sendOwed(); // the lock reverts: InsufficientFreeBalance
    // The deadline passes before the index sees the withdrawal: the ledger slashes 50, and the
    // escrow, which has no bond on the block, refuses the slash.
    clock = t0 + 720_000;
    await stack.aggregator.aggregator.tick();
    expect((await stack.client.getBlock(n)).stage).toBe("open_proving");
    await sendOwed();
    const slash = await stack.db.prisma.settlement.findUniqueOrThrow({
      where: { key: `slash:${n}` },
    });
    expect(slash.error ?? "").toMatch(/NoBondLocked/);
    // The index books the withdrawal: the slash shrinks to 25 in the ledger (the escrow paid 75
    // of the 100); the escrow locks 25 and slashes it.
    await poll();
    await sendOwed();
    await poll();
    expect(await agree(racer.address)).toEqual({ free: 0n, locked: 0n, pending: WITHDRAWN });
    const rows = await stack.db.prisma.settlement.findMany({
      where: { blockNumber: n },
      orderBy: { id: "asc" },
    });
    expect(rows.map((r) => [r.kind, r.status])).toEqual([
      ["lock", "confirmed"],
      ["slash", "confirmed"],
    ]);
  });

  it.each([
    {
      what: "the shrunk bond is locked again, then slashed",
      n: 22,
      who: 0xe3,
      withdrawn: WITHDRAWN,
    },
    {
      what: "nothing left: the lock is cancelled, nothing slashed",
      n: 24,
      who: 0xe6,
      withdrawn: DEPOSIT,
    },
  ])("indexed while the lock was sent, reverted after: $what", async ({ n, who, withdrawn }) => {
    const racer = account(who);
    const left = DEPOSIT - withdrawn;
    await l1.fund(racer.address);
    await l1.deposit(racer, DEPOSIT);
    const t0 = Date.now();
    await openAndBid(racer, n, BOND, t0 + 60_000, t0 + 120_000);
    await closeAt(t0 + 61_000, n, racer.address);
    // The lock is signed and recorded as sent; before it is broadcast, the winner asks collateral
    // back and the index books that withdrawal (the lock is `sent`). The lock then reverts.
    let raced = false;
    let lockTx = "0x" as `0x${string}`;
    const settler = settlerOn(stack, l1, {
      now: () => clock,
      beforeBroadcast: async ({ key, txHash }) => {
        if (key !== `lock:${n}` || raced) return;
        raced = true;
        lockTx = txHash as `0x${string}`;
        await requestWithdrawal(racer, withdrawn);
        await poll();
      },
    });
    await sendOwed(settler);
    expect(raced).toBe(true);
    expect(await ledgerBond(n)).toBe(left);
    const failed = await l1.client.getTransactionReceipt({ hash: lockTx });
    expect(failed.status).toBe("reverted");
    await sendOwed(settler);
    await poll();
    expect(await blockBond(n)).toBe(left);
    expect(await agree(racer.address)).toEqual({ free: 0n, locked: left, pending: withdrawn });
    const lock = await stack.db.prisma.settlement.findUniqueOrThrow({
      where: { key: `lock:${n}` },
    });
    expect(lock.status).toBe(left > 0n ? "confirmed" : "cancelled");
    await missDeadline(t0 + 120_000, n);
    expect(await agree(racer.address)).toEqual({ free: 0n, locked: 0n, pending: withdrawn });
    const reverted = await stack.db.prisma.settlement.findMany({
      where: { blockNumber: n, status: "reverted" },
    });
    expect(reverted).toEqual([]);
  });

  it("a withdrawal shrinks the bond whose lock has not reached the escrow, not a newer block's that has", async () => {
    const racer = account(0xe4);
    const B = (DEPOSIT * 2n) / 5n; // "40" each
    const [older, newer] = [31, 32];
    await l1.fund(racer.address);
    await l1.deposit(racer, DEPOSIT);
    const t0 = Date.now();
    // `newer` closes first and its lock reaches the escrow (and the index); `older` closes later,
    // and its lock is still owed when the winner asks back all it has free on the escrow (60).
    await openAndBid(racer, newer, B, t0 + 60_000, t0 + 3_600_000);
    await openAndBid(racer, older, B, t0 + 120_000, t0 + 180_000);
    await closeAt(t0 + 61_000, newer, racer.address);
    await sendOwed();
    await poll();
    expect(await blockBond(newer)).toBe(B);
    await closeAt(t0 + 121_000, older, racer.address);
    await requestWithdrawal(racer, DEPOSIT - B);
    await poll();
    await sendOwed();
    await poll();
    // Block by block, the ledger's bonds are the escrow's.
    expect([await ledgerBond(newer), await ledgerBond(older)]).toEqual([B, 0n]);
    expect([await blockBond(newer), await blockBond(older)]).toEqual([B, 0n]);
    expect(await agree(racer.address)).toEqual({ free: 0n, locked: B, pending: DEPOSIT - B });
    // The older block's deadline passes: neither side has a bond on it to slash.
    await missDeadline(t0 + 180_000, older);
    expect(await agree(racer.address)).toEqual({ free: 0n, locked: B, pending: DEPOSIT - B });
  });
});
