// A winner that asks its collateral back on the escrow before the winning bond's lock reaches it
// (COLLATERAL=chain). The escrow pays the withdrawal out of collateral the ledger has locked, so
// the lock can only fail on chain. If the block's proof deadline passed before the index saw the
// withdrawal, the ledger has already slashed that bond: the withdrawal is booked by taking the
// slash back (the escrow never held the bond, so it can neither burn it nor credit the
// sequencer), the index keeps going (bids are served), and the ledger and escrow agree. And
// the lock still owed asks the escrow for the bond as the ledger shrank it (or is not sent when
// nothing is left): collateral deposited before it is sent is not locked behind the ledger's back.
import { reconcileEscrow } from "@prover-boost/chain";
import { accounts } from "@prover-boost/db";
import { escrowAbi } from "@prover-boost/escrow";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, signedBid } from "./fixtures.ts";
import { eventually, type Stack, sequencer, startStack } from "./harness.ts";
import { type L1, settlerOn, startL1 } from "./support/l1.ts";
import { balance } from "./support/market-flow.ts";

const DEPOSIT = 10n ** 15n;

describe("a withdrawal the escrow took before the winning bond's lock", () => {
  let l1: L1;
  let stack: Stack;

  beforeAll(async () => {
    l1 = await startL1();
    // The aggregator's duties and the index are driven by hand, the aggregator on its own clock.
    stack = await startStack({ env: l1.env, aggregator: false });
    await l1.fund(sequencer.address);
    await stack.relay.ctx.escrowIndex!.stop();
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    await l1?.stop();
  });

  /** One settler pass over everything owed (written on the aggregator's clock, ahead of the settler's). */
  async function sendOwed() {
    await stack.db.prisma.settlement.updateMany({
      where: { status: "pending" },
      data: { nextAttemptAt: 0n },
    });
    await stack.aggregator.settler!.run();
  }

  /** The sequencer's earnings in the ledger. */
  const earnings = () => balance(stack.db.prisma, accounts.earnings(sequencer.address));

  /** Block `n`'s owed lock and slash, as [kind, status]. */
  const owedOf = async (n: number) =>
    (
      await stack.db.prisma.settlement.findMany({
        where: { blockNumber: n, kind: { in: ["lock", "slash"] } },
        orderBy: { id: "asc" },
      })
    ).map((o) => [o.kind, o.status]);

  /**
   * Once what is owed is sent and indexed: `racer`'s balances on the escrow are `chain`, and the
   * ledger agrees with the escrow on them, on the sequencer's and on the burn.
   */
  async function expectAgreed(racer: ReturnType<typeof account>, chain: Record<string, bigint>) {
    await sendOwed();
    await stack.relay.ctx.escrowIndex!.poll();
    const [r, s] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [
      racer.address,
      sequencer.address,
    ]);
    expect(r!.chain).toEqual(chain);
    expect(r!.ledger).toEqual(r!.chain);
    expect(s!.ledger).toEqual(s!.chain);
    await expectBurnAsEscrow();
  }

  /** The ledger's burn is what the escrow burned. */
  async function expectBurnAsEscrow() {
    const totalBurned = await l1.client.readContract({
      address: l1.escrow,
      abi: escrowAbi,
      functionName: "totalBurned",
    });
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(totalBurned);
  }

  /**
   * wonWithWithdrawalFirst with all of DEPOSIT bid and asked back, the chain's state kept from
   * before the withdrawal: `reorg()` takes the withdrawal away (a new fork from there), and the
   * index undoes it.
   */
  async function wonBeforeReorg(racer: ReturnType<typeof account>, n: number) {
    let snapshot: unknown;
    const won = await wonWithWithdrawalFirst(racer, n, DEPOSIT, DEPOSIT, async () => {
      snapshot = await l1.rpc("evm_snapshot");
    });
    const reorg = async () => {
      await l1.rpc("evm_revert", [snapshot]);
      await l1.mine(3);
      await won.index.poll();
      expect(won.index.status.ok ? "" : won.index.status.reason).toBe("");
    };
    return { ...won, reorg };
  }

  /**
   * `racer` deposits DEPOSIT and bids `bond` on block `n`, asks `withdrawn` back on the escrow
   * (unseen by the index; nothing when 0), and wins at the close, on the aggregator's clock: the
   * bond is locked in the ledger and its lock owed to the escrow. Returns the clock's setter and
   * the deadline.
   */
  async function wonWithWithdrawalFirst(
    racer: ReturnType<typeof account>,
    n: number,
    bond: bigint,
    withdrawn: bigint,
    beforeWithdrawal: () => Promise<unknown> = async () => {},
  ) {
    const index = stack.relay.ctx.escrowIndex!;
    await l1.fund(racer.address);
    await l1.fundReward(sequencer, n, 1000n);
    await l1.deposit(racer, DEPOSIT);
    await index.poll();
    const now = Date.now();
    const closesAt = now + 60_000;
    const deadline = now + 120_000;
    const open = await openAuction(n, {
      blockReward: "1000",
      biddingClosesAt: closesAt,
      proofDeadline: deadline,
    });
    await stack.client.openAuction(open.auction, open.txs, open.signature);
    const bid = await signedBid(racer, n, { bondAmount: bond.toString() });
    expect((await stack.client.submitBid(bid.quote, bid.signature)).status).toBe("accepted");
    await beforeWithdrawal();
    if (withdrawn > 0n) await l1.requestWithdrawal(racer, withdrawn);
    let clock = closesAt + 1000;
    stack.aggregator.ctx.now = () => clock;
    await stack.aggregator.aggregator.tick();
    expect((await stack.client.getBlock(n)).winner).toBe(racer.address);
    return {
      index,
      deadline,
      setClock: (t: number) => {
        clock = t;
      },
    };
  }

  it("after the ledger slashed the bond: the withdrawal takes the slash back, the index keeps going", async () => {
    const racer = account(0xf8);
    const n = 6;
    // The winner asks all its collateral back on the escrow; the index has not seen it yet. The
    // auction closes (the bond locked in the ledger, its lock owed to the escrow), and the proof
    // deadline passes before the index sees the withdrawal: the ledger slashes the bond.
    const { index, deadline, setClock } = await wonWithWithdrawalFirst(racer, n, DEPOSIT, DEPOSIT);
    setClock(deadline + 600_000);
    await stack.aggregator.aggregator.tick();
    expect((await stack.client.getBlock(n)).stage).toBe("open_proving");
    expect(await balance(stack.db.prisma, accounts.locked(racer.address))).toBe(0n);

    // The index books the withdrawal and keeps going.
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    // Nothing is left to lock or slash on chain: neither is sent (both would only fail).
    expect(await owedOf(n)).toEqual([
      ["lock", "cancelled"],
      ["slash", "cancelled"],
    ]);
    await expectAgreed(racer, { free: 0n, locked: 0n, pending: DEPOSIT });
    expect(index.status.ok ? "" : index.status.reason).toBe("");
  });

  it("a withdrawal that took the slash back, taken by a reorg and mined again: taken back once", async () => {
    const racer = account(0xf6);
    const n = 8;
    const { index, deadline, setClock, reorg } = await wonBeforeReorg(racer, n);
    const earningsBefore = await earnings();
    setClock(deadline + 600_000);
    await stack.aggregator.aggregator.tick();
    const burnSlashed = await balance(stack.db.prisma, accounts.burn);
    const earningsSlashed = await earnings();
    expect(earningsSlashed).toBeGreaterThan(earningsBefore);
    const bond = async () =>
      (await stack.db.prisma.block.findUniqueOrThrow({ where: { number: n } })).bondAmount;
    await index.poll();
    expect(String(await bond())).toBe("0");
    expect(await earnings()).toBe(earningsBefore);
    // A reorg takes the withdrawal: the slash is the ledger's again, its lock and slash owed.
    await reorg();
    expect(String(await bond())).toBe(DEPOSIT.toString());
    expect(await owedOf(n)).toEqual([
      ["lock", "pending"],
      ["slash", "pending"],
    ]);
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(burnSlashed);
    expect(await earnings()).toBe(earningsSlashed);
    // Mined again on the new fork: the slash is taken back once, nothing is short.
    await l1.requestWithdrawal(racer, DEPOSIT);
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    expect(String(await bond())).toBe("0");
    const short = accounts.shortfall(accounts.available(racer.address));
    expect(await balance(stack.db.prisma, short)).toBe(0n);
    expect(await owedOf(n)).toEqual([
      ["lock", "cancelled"],
      ["slash", "cancelled"],
    ]);
    await expectAgreed(racer, { free: 0n, locked: 0n, pending: DEPOSIT });
    expect(await earnings()).toBe(earningsBefore);
  });

  it("a withdrawal that took the slash back of a block since expired, taken by a reorg: the prover's collateral is free again", async () => {
    const racer = account(0xf5);
    const n = 9;
    const { index, deadline, setClock, reorg } = await wonBeforeReorg(racer, n);
    const earningsBefore = await earnings();
    const burnBefore = await balance(stack.db.prisma, accounts.burn);
    setClock(deadline + 600_000);
    await stack.aggregator.aggregator.tick();
    await index.poll();
    // Nobody proves it in open proving either: the block expires, its lock never to be sent.
    setClock(deadline + 3 * 86_400_000);
    await eventually(async () => {
      await stack.aggregator.aggregator.tick();
      return (await stack.client.getBlock(n)).stage === "expired";
    });
    // A reorg takes the withdrawal: the escrow holds the bond free, and so does the ledger.
    await reorg();
    expect(await owedOf(n)).toEqual([
      ["lock", "cancelled"],
      ["slash", "cancelled"],
    ]);
    expect(await balance(stack.db.prisma, accounts.available(racer.address))).toBe(DEPOSIT);
    expect(await earnings()).toBe(earningsBefore);
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(burnBefore);
    await expectAgreed(racer, { free: DEPOSIT, locked: 0n, pending: 0n });
  });

  it("a lock on its way with the whole bond when a withdrawal took the slash back; a reorg takes the withdrawal and the lock lands: slashed again, as the escrow slashes", async () => {
    const racer = account(0xf4);
    const n = 10;
    // Won with nothing asked back yet.
    const { index, deadline, setClock } = await wonWithWithdrawalFirst(racer, n, DEPOSIT, 0n);

    // The settler sends the lock of the whole bond, and no block takes it yet: it waits in the
    // mempool (kept aside here, so the withdrawal's block goes without it).
    const lockRow = () =>
      stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: `lock:${n}` } });
    await stack.db.prisma.settlement.updateMany({
      where: { status: "pending" },
      data: { nextAttemptAt: 0n },
    });
    const settler = settlerOn(stack, l1, {
      receiptTimeoutMs: 300,
      beforeBroadcast: async () => {
        await l1.rpc("evm_setAutomine", [false]);
      },
    });
    let raw: unknown;
    try {
      await settler.run();
      const lock = await lockRow();
      expect(lock.status).toBe("sent");
      raw = await l1.rpc("eth_getRawTransactionByHash", [lock.txHash]);
      await l1.rpc("anvil_dropTransaction", [lock.txHash]);
    } finally {
      await l1.rpc("evm_setAutomine", [true]);
    }
    const snapshot = await l1.rpc("evm_snapshot");
    // The winner asks all its collateral back, and the withdrawal is mined first. The proof
    // deadline passes before the index sees it: the ledger slashes the bond, then the withdrawal
    // takes the slash back (the lock has not reached the escrow).
    await l1.requestWithdrawal(racer, DEPOSIT);
    const earningsBefore = await earnings();
    const burnBefore = await balance(stack.db.prisma, accounts.burn);
    setClock(deadline + 600_000);
    await stack.aggregator.aggregator.tick();
    const earningsSlashed = await earnings();
    const burnSlashed = await balance(stack.db.prisma, accounts.burn);
    expect(earningsSlashed).toBeGreaterThan(earningsBefore);
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    const bond = async () =>
      (await stack.db.prisma.block.findUniqueOrThrow({ where: { number: n } })).bondAmount;
    expect(String(await bond())).toBe("0");
    expect(await earnings()).toBe(earningsBefore);
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(burnBefore);

    // A reorg takes the withdrawal away, and the lock lands on the new fork, whole: the escrow
    // holds the bond locked and will slash it. So does the ledger: the slash is whole again.
    await l1.rpc("evm_revert", [snapshot]);
    const beforeLock = await l1.rpc("evm_snapshot");
    await l1.rpc("eth_sendRawTransaction", [raw]).catch(() => {});
    await l1.mine(3);
    const onEscrow = await l1.client.readContract({
      address: l1.escrow,
      abi: escrowAbi,
      functionName: "balanceOf",
      args: [racer.address],
    });
    expect(onEscrow.slice(0, 3)).toEqual([0n, DEPOSIT, 0n]);
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    expect(String(await bond())).toBe(DEPOSIT.toString());
    expect((await owedOf(n))[1]).toEqual(["slash", "pending"]);
    expect(await earnings()).toBe(earningsSlashed);
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(burnSlashed);
    const short = accounts.shortfall(accounts.available(racer.address));
    expect(await balance(stack.db.prisma, short)).toBe(0n);

    // Another reorg takes the lock away too: the collateral is free on both sides, and nothing is
    // slashed. The lock lands again after it: slashed again.
    await l1.rpc("evm_revert", [beforeLock]);
    await l1.mine(5);
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    expect(String(await bond())).toBe("0");
    expect((await owedOf(n))[1]).toEqual(["slash", "cancelled"]);
    expect(await balance(stack.db.prisma, accounts.available(racer.address))).toBe(DEPOSIT);
    expect(await earnings()).toBe(earningsBefore);
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(burnBefore);
    await l1.rpc("eth_sendRawTransaction", [raw]);
    await l1.mine(1);
    await index.poll();
    expect(String(await bond())).toBe(DEPOSIT.toString());
    expect(await earnings()).toBe(earningsSlashed);
    expect(await balance(stack.db.prisma, short)).toBe(0n);
    await expectAgreed(racer, { free: 0n, locked: 0n, pending: 0n });
    expect(await owedOf(n)).toEqual([
      ["lock", "confirmed"],
      ["slash", "confirmed"],
    ]);
  });

  it("a deposit before the lock is sent: the escrow locks only what the ledger still holds", async () => {
    const racer = account(0xf7);
    const n = 5;
    const { index, deadline, setClock } = await wonWithWithdrawalFirst(racer, n, DEPOSIT, DEPOSIT);
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    // The operator tops up before the settler gets the lock out.
    await l1.deposit(racer, DEPOSIT);
    await sendOwed();
    await index.poll();
    const check = async () => {
      const [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [racer.address]);
      expect(r!.chain).toEqual({ free: DEPOSIT, locked: 0n, pending: DEPOSIT });
      expect(r!.ledger).toEqual(r!.chain);
    };
    await check();
    // Its deadline passes: there is no bond to slash, on either side.
    setClock(deadline + 600_000);
    await stack.aggregator.aggregator.tick();
    await sendOwed();
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    await check();
    const reverted = await stack.db.prisma.settlement.findMany({
      where: { blockNumber: n, status: "reverted" },
    });
    expect(reverted).toEqual([]);
  });

  it("a withdrawal that takes part of the bond: the escrow locks, then slashes, the rest, as the ledger", async () => {
    const racer = account(0xf9);
    const n = 7;
    const BOND = DEPOSIT / 2n;
    const WITHDRAWN = (DEPOSIT * 3n) / 4n;
    const { index, deadline, setClock } = await wonWithWithdrawalFirst(racer, n, BOND, WITHDRAWN);
    await index.poll();
    await sendOwed();
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    const left = DEPOSIT - WITHDRAWN;
    let [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [racer.address]);
    expect(r!.chain).toEqual({ free: 0n, locked: left, pending: WITHDRAWN });
    expect(r!.ledger).toEqual(r!.chain);

    const burnedBefore = await l1.client.readContract({
      address: l1.escrow,
      abi: escrowAbi,
      functionName: "totalBurned",
    });
    const ledgerBurnBefore = await balance(stack.db.prisma, accounts.burn);
    setClock(deadline + 600_000);
    await stack.aggregator.aggregator.tick();
    await sendOwed();
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [racer.address]);
    expect(r!.chain).toEqual({ free: 0n, locked: 0n, pending: WITHDRAWN });
    expect(r!.ledger).toEqual(r!.chain);
    const burned = await l1.client.readContract({
      address: l1.escrow,
      abi: escrowAbi,
      functionName: "totalBurned",
    });
    expect(burned).toBeGreaterThan(burnedBefore);
    expect((await balance(stack.db.prisma, accounts.burn)) - ledgerBurnBefore).toBe(
      burned - burnedBefore,
    );
    const [s] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [sequencer.address]);
    expect(s!.ledger).toEqual(s!.chain);
  });
});
