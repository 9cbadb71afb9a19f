// COLLATERAL=chain under faults, on real anvil nodes, Postgres and Redis:
// - the L1 killed: bids are refused with 503 L1_UNAVAILABLE and nothing is credited, and
//   /readyz answers 503 naming the L1;
// - the L1 restarted empty on the same port (the escrow redeployed at the same address): still
//   503 (bids and /readyz), and deposits on the new chain are not credited (its genesis is not the indexed one),
//   nor is any settlement sent to it or recorded as final;
// - a log whose block leaves the chain (a reorg) has its movement reversed, and a live bid that
//   relied on it is cancelled; so is a live bid whose collateral is asked back on the escrow (and
//   a bond the L1 paid to a withdrawal before its lock arrived shrinks, its lock reported); a log
//   gone from deeper than L1_MAX_REORG_DEPTH is a lost L1 instead (nothing reversed, 503); a log
//   back on the chain after a reorg had removed it is booked again, once;
// - a settlement that reverts is recorded with its reason and never sent again;
// - a crash between recording a settlement transaction and broadcasting it, or between
//   broadcasting it and recording its receipt, never settles a block twice; nor does a reorg that
//   drops a settlement before its confirmations;
// - a transient failure is retried after a doubling wait; an aggregator whose key is not the
//   escrow's settler does not start.
import { createAggregator } from "@prover-boost/aggregator";
import {
  enqueueSettlement,
  reconcileEscrow,
  reverseMovement,
  type Settler,
} from "@prover-boost/chain";
import { aggregatorEnv, parseEnv } from "@prover-boost/config";
import { accounts, balanceOf, type Tx, transfer } from "@prover-boost/db";
import { anvilAccount, escrowAbi } from "@prover-boost/escrow";
import { signedBidCancellation } from "@prover-boost/sdk";
import { getAddress, type Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, domain, openAuction, signedBid } from "./fixtures.ts";
import { eventually, type Stack, sequencer, startStack, TEST_REDIS_URL } from "./harness.ts";
import { relayError } from "./support/blocks.ts";
import { testDomainEnv } from "./support/domain.ts";
import {
  clientThrough,
  fundIndexedReward,
  indexerOn,
  type L1,
  settlerAccount,
  settlerOn,
  startL1,
  walletOn,
} from "./support/l1.ts";
import { blockedBy } from "./support/locks.ts";

const DEPOSIT = 10n ** 15n;

async function collateral(stack: Stack, a: `0x${string}`) {
  const c = (await stack.client.getProver(a)).collateral;
  return { available: BigInt(c.available), locked: BigInt(c.locked) };
}

async function openFor(
  stack: Stack,
  l1: L1,
  block: number,
  biddingMs = 600_000,
  deadlineMs = 1_200_000,
) {
  await fundIndexedReward(stack, l1, block, 1000n);
  const now = Date.now();
  const open = await openAuction(block, {
    blockReward: "1000",
    biddingClosesAt: now + biddingMs,
    proofDeadline: now + deadlineMs,
  });
  await stack.client.openAuction(open.auction, open.txs, open.signature);
}

describe("the L1 killed, then restarted empty", () => {
  const first = account(0xf1);
  const second = account(0xf2);
  let l1: L1;
  let stack: Stack;

  beforeAll(async () => {
    l1 = await startL1();
    stack = await startStack({ env: l1.env, aggregator: false });
    await l1.fund(first.address);
    await l1.fund(sequencer.address);
    await l1.deposit(first, DEPOSIT);
    await eventually(async () => (await collateral(stack, first.address)).available === DEPOSIT);
    await openFor(stack, l1, 1);
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    await l1?.stop();
  });

  it("refuses bids with 503 L1_UNAVAILABLE while the L1 is unreachable, crediting nothing", async () => {
    const logsBefore = await stack.db.prisma.chainLog.count();
    await stack.relay.ctx.escrowIndex!.poll();
    const ready = await fetch(`${stack.url}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([
      200,
      { status: "ready", database: "up", redis: "up", l1: "up" },
    ]);
    await l1.stop();
    // The next pass of the index finds the L1 gone (its loop does the same within L1_POLL_MS).
    await stack.relay.ctx.escrowIndex!.poll();
    // Not ready either: /readyz names the L1 and the indexer's reason.
    const notReady = await fetch(`${stack.url}/readyz`);
    expect(notReady.status).toBe(503);
    const body = ((await notReady.json()) as { error: { code: string; message: string } }).error;
    expect(body.code).toBe("UNAVAILABLE");
    expect(body.message).toMatch(
      /not ready: l1 down \(database up, redis up, l1 down: the L1 is unreachable/,
    );
    const bid = await signedBid(first, 1);
    expect(await relayError(stack.client.submitBid(bid.quote, bid.signature))).toEqual({
      status: 503,
      code: "L1_UNAVAILABLE",
    });
    const res = await fetch(`${stack.url}/v1/bids`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(bid),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(await stack.db.prisma.bid.count()).toBe(0);
    expect(await stack.db.prisma.chainLog.count()).toBe(logsBefore);
    expect((await collateral(stack, first.address)).available).toBe(DEPOSIT);
  });

  it("keeps a settlement the unreachable L1 could not take, retrying it after a growing wait", async () => {
    let now = Date.now();
    const settler = settlerOn(stack, l1, {
      retry: { baseMs: 60_000, maxMs: 240_000 },
      now: () => now,
    });
    await enqueueSettlement(stack.db.prisma, { kind: "slash", blockNumber: 1 }, now);
    const row = () => stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "slash:1" } });
    await settler.run();
    let r = await row();
    expect([r.status, r.errorCode, r.attempts]).toEqual(["pending", "L1_UNAVAILABLE", 1]);
    expect(r.nextAttemptAt).toBe(BigInt(now + 60_000));
    // Not tried again before its time...
    now += 59_000;
    await settler.run();
    expect((await row()).attempts).toBe(1);
    // ...then again, and the next wait doubles.
    now += 1000;
    await settler.run();
    r = await row();
    expect([r.status, r.attempts]).toEqual(["pending", 2]);
    expect(r.nextAttemptAt).toBe(BigInt(now + 120_000));
    await stack.db.prisma.settlement.delete({ where: { key: "slash:1" } });
  });

  it("stays at 503 when the L1 comes back without its state, and credits nothing from it", async () => {
    l1 = await startL1({ port: l1.anvil.port });
    // Same deployer, same nonce: the new escrow has the old address, but not the old chain.
    expect(getAddress(l1.escrow)).toBe(stack.relay.env.ESCROW_ADDRESS);
    await l1.fund(second.address);
    await l1.deposit(second, DEPOSIT);
    const index = stack.relay.ctx.escrowIndex!;
    await index.poll();
    await index.poll();
    const status = index.status;
    expect(status.ok).toBe(false);
    expect(status.ok ? "" : status.reason).toMatch(/L1 state lost/);
    const notReady = await fetch(`${stack.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(((await notReady.json()) as { error: { message: string } }).error.message).toMatch(
      /l1 down: L1 state lost/,
    );
    const bid = await signedBid(first, 1);
    expect(await relayError(stack.client.submitBid(bid.quote, bid.signature))).toEqual({
      status: 503,
      code: "L1_UNAVAILABLE",
    });
    expect((await collateral(stack, second.address)).available).toBe(0n);
    expect(await stack.db.prisma.chainLog.count({ where: { event: "Deposited" } })).toBe(1);
  });

  it("sends no settlement to the L1 that came back without its state, and records none as final", async () => {
    // A slash owed on the old chain: on the new one the escrow (same address) has no bond for the
    // block, so the call would revert, and the row would be closed for good.
    const settler = settlerOn(stack, l1, { retry: { baseMs: 60_000, maxMs: 240_000 } });
    await enqueueSettlement(stack.db.prisma, { kind: "slash", blockNumber: 1 }, Date.now());
    await settler.run();
    const r = await stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "slash:1" } });
    expect([r.status, r.errorCode, r.txHash, r.attempts]).toEqual([
      "pending",
      "L1_UNAVAILABLE",
      null,
      1,
    ]);
    expect(r.error).toMatch(/L1 state lost/);
    await stack.db.prisma.settlement.delete({ where: { key: "slash:1" } });
  });
});

describe("reorgs and settlements", () => {
  const prover = account(0xf3);
  let l1: L1;
  let stack: Stack;

  beforeAll(async () => {
    l1 = await startL1();
    stack = await startStack({ env: l1.env, aggregator: false });
    await l1.fund(prover.address);
    await l1.fund(sequencer.address);
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    await l1?.stop();
  });

  /** Deposits the prover's collateral (indexed), funds block `n`'s reward, bids it all on `n`. */
  async function fundedBid(prover: ReturnType<typeof account>, n: number, deadlineMs?: number) {
    await l1.fund(prover.address);
    await l1.deposit(prover, DEPOSIT);
    await stack.relay.ctx.escrowIndex!.poll();
    expect((await collateral(stack, prover.address)).available).toBe(DEPOSIT);
    await openFor(stack, l1, n, 1500, deadlineMs);
    const bid = await signedBid(prover, n, { bondAmount: DEPOSIT.toString() });
    expect((await stack.client.submitBid(bid.quote, bid.signature)).status).toBe("accepted");
  }

  /** The prover asks all its collateral back on the L1. */
  const requestWithdrawal = (prover: ReturnType<typeof account>) =>
    l1.requestWithdrawal(prover, DEPOSIT);

  /** Block `n`'s bond is gone to the prover's withdrawal; the ledger agrees with the escrow. */
  async function expectBondWithdrawn(prover: ReturnType<typeof account>, n: number) {
    const block = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: n } });
    expect(block.bondAmount?.toFixed()).toBe("0");
    const [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [prover.address]);
    expect(r!.chain).toEqual({ free: 0n, locked: 0n, pending: DEPOSIT });
    expect(r!.ledger).toEqual(r!.chain);
  }

  /** Block `n`'s bond in the ledger (decimal), and its lock's settlement row. */
  const bondOf = async (n: number) =>
    (await stack.db.prisma.block.findUniqueOrThrow({ where: { number: n } })).bondAmount?.toFixed();
  const lockOf = (n: number) =>
    stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: `lock:${n}` } });

  /** Sends block `n`'s owed lock until confirmed (`poll`: the index, polled by hand, follows). */
  async function lockConfirmed(n: number, poll = true) {
    await eventually(async () => {
      await stack.aggregator.settler!.run();
      await l1.mine(1);
      if (poll) await stack.relay.ctx.escrowIndex!.poll();
      return (await lockOf(n)).status === "confirmed";
    });
  }

  /** The escrow holds `chain` of `who`'s collateral, and the ledger says the same. */
  async function expectEscrow(
    who: ReturnType<typeof account>,
    chain: { free: bigint; locked: bigint; pending: bigint },
  ) {
    const [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [who.address]);
    expect(r!.chain).toEqual(chain);
    expect(r!.ledger).toEqual(r!.chain);
  }

  /** Ticks the aggregator until block `n`'s auction closed with `prover` winning. */
  async function closedFor(prover: ReturnType<typeof account>, n: number) {
    await eventually(async () => {
      await stack.aggregator.aggregator.tick();
      return (await stack.client.getBlock(n)).winner === prover.address;
    });
  }

  it("reverses the movement of a log whose block left the chain, cancelling the bid it backed", async () => {
    const snapshot = await l1.rpc("evm_snapshot");
    const { block } = await l1.deposit(prover, DEPOSIT);
    await eventually(async () => (await collateral(stack, prover.address)).available === DEPOSIT);
    await openFor(stack, l1, 2);
    const bid = await signedBid(prover, 2, { bondAmount: (DEPOSIT / 2n).toString() });
    expect((await stack.client.submitBid(bid.quote, bid.signature)).status).toBe("accepted");

    await l1.rpc("evm_revert", [snapshot]);
    await l1.mine(Number(block) + 2 - Number(await l1.client.getBlockNumber({ cacheTime: 0 })));
    await eventually(async () => {
      const log = await stack.db.prisma.chainLog.findFirst({ where: { event: "Deposited" } });
      return log?.removed === true;
    });
    expect(await collateral(stack, prover.address)).toEqual({ available: 0n, locked: 0n });
    const [row] = await stack.db.prisma.bid.findMany({ where: { blockNumber: 2 } });
    expect(row!.status).toBe("unfunded");
    const reversed = await stack.db.prisma.ledgerEntry.findMany({
      where: { movementId: { endsWith: ":reversed" } },
    });
    expect(reversed.reduce((s, e) => s + BigInt(e.amount.toFixed()), 0n)).toBe(0n);
    expect(reversed.length).toBeGreaterThan(0);
    // The chain's own later deposit is credited as usual.
    await l1.deposit(prover, DEPOSIT * 2n);
    await eventually(
      async () => (await collateral(stack, prover.address)).available === DEPOSIT * 2n,
    );
  });

  it("a withdrawal of collateral a live bid holds cancels the bid; the ledger follows the escrow", async () => {
    const leaver = account(0xf4);
    await l1.fund(leaver.address);
    await l1.deposit(leaver, DEPOSIT);
    await eventually(async () => (await collateral(stack, leaver.address)).available === DEPOSIT);
    await openFor(stack, l1, 3);
    const bid = await signedBid(leaver, 3, { bondAmount: (DEPOSIT / 2n).toString() });
    const accepted = await stack.client.submitBid(bid.quote, bid.signature);
    expect(accepted.status).toBe("accepted");
    const wallet = walletOn(l1, leaver);
    const send = async (functionName: "requestWithdrawal" | "completeWithdrawal") => {
      const hash = await wallet.writeContract({
        address: l1.escrow,
        abi: escrowAbi,
        functionName,
        ...(functionName === "requestWithdrawal" ? { args: [DEPOSIT] } : {}),
      } as Parameters<typeof wallet.writeContract>[0]);
      await l1.client.waitForTransactionReceipt({ hash });
    };
    await send("requestWithdrawal");
    await eventually(async () => {
      const [row] = await stack.db.prisma.bid.findMany({ where: { blockNumber: 3 } });
      return row?.status === "unfunded";
    });
    // The prover's own cancellation of that bid, sent after, is told the bid is no longer open:
    // not that its authorization was replayed, for it was never used.
    const cancellation = await signedBidCancellation(leaver, domain, {
      bidId: accepted.bidId as `0x${string}`,
      prover: leaver.address,
    });
    expect(await relayError(stack.client.cancelBid(3, leaver.address, cancellation))).toEqual({
      status: 404,
      code: "BID_NOT_FOUND",
    });
    expect((await collateral(stack, leaver.address)).available).toBe(0n);
    let [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [leaver.address]);
    expect(r!.chain).toEqual({ free: 0n, locked: 0n, pending: DEPOSIT });
    expect(r!.ledger).toEqual(r!.chain);
    await send("completeWithdrawal");
    await eventually(async () => {
      [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [leaver.address]);
      return r!.ledger.pending === 0n;
    });
    expect(r!.ledger).toEqual({ free: 0n, locked: 0n, pending: 0n });
    expect(r!.chain).toEqual(r!.ledger);
  });

  it("an aggregator whose key is not the escrow's settler, or whose slash split differs, does not start", async () => {
    const start = (env: Record<string, string>) =>
      createAggregator(
        parseEnv(aggregatorEnv, {
          ...l1.env,
          ...testDomainEnv,
          REDIS_URL: TEST_REDIS_URL,
          REDIS_PREFIX: stack.prefix,
          ...env,
        }),
        { db: stack.db },
      );
    await expect(start({ SETTLER_KEY: `0x${"77".repeat(32)}` })).rejects.toThrow(
      /the escrow's settler is/,
    );
    await expect(start({ SLASH_TO_SEQUENCER_BPS: "2500" })).rejects.toThrow(
      /SLASH_TO_SEQUENCER_BPS is 5000, SLASH_TO_SEQUENCER_BPS is 2500/,
    );
  });

  it("records a settlement that reverts, with its reason, and never sends it again", async () => {
    const settler = stack.aggregator.settler!;
    await enqueueSettlement(stack.db.prisma, { kind: "slash", blockNumber: 99 }, Date.now());
    const nonce = await l1.client.getTransactionCount({ address: settlerAccount.address });
    await settler.run();
    const row = await stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "slash:99" } });
    expect(row.status).toBe("reverted");
    expect(row.errorCode).toBe("SETTLEMENT_REVERTED");
    expect(row.error).toMatch(/BlockNotFunded/);
    await settler.run();
    await settler.run();
    const again = await stack.db.prisma.settlement.findUniqueOrThrow({
      where: { key: "slash:99" },
    });
    expect(again.status).toBe("reverted");
    expect(again.attempts).toBe(row.attempts);
    expect(await l1.client.getTransactionCount({ address: settlerAccount.address })).toBe(nonce);
  });

  /** The escrow's owner makes `to` its settler (a rotation). */
  const setSettler = async (to: `0x${string}`) =>
    l1.client.waitForTransactionReceipt({
      hash: await walletOn(l1, anvilAccount(0)).writeContract({
        address: l1.escrow,
        abi: escrowAbi,
        functionName: "setSettler",
        args: [to],
      }),
    });

  it("a settler key the escrow no longer accepts (rotated) keeps its settlements owed, not reverted", async () => {
    // The owner rotates the escrow's settler while this aggregator runs: every call of its key
    // reverts Unauthorized, a verdict on the key, not on the settlement.
    const reward = 3000n;
    await l1.fundReward(sequencer, 18, reward);
    await setSettler(account(0x5e771e).address);
    try {
      await enqueueSettlement(stack.db.prisma, settleOf(18, reward), Date.now());
      const settler = stack.aggregator.settler!;
      await settler.run();
      const row = await stack.db.prisma.settlement.findUniqueOrThrow({
        where: { key: "settle:18" },
      });
      expect(row.status).toBe("pending");
      expect(row.error).toMatch(/Unauthorized/);
    } finally {
      await setSettler(settlerAccount.address);
    }
    // The key accepted again, the settlement goes through.
    await eventually(async () => {
      await stack.aggregator.settler!.run();
      await l1.mine(1);
      const row = await stack.db.prisma.settlement.findUniqueOrThrow({
        where: { key: "settle:18" },
      });
      return row.status === "confirmed";
    }, 20_000);
    expect(await settledEvents(18)).toHaveLength(1);
  });

  it("a key rotated while its transaction was on its way: reverted on chain, the settlement stays owed, then goes through", async () => {
    const reward = 3000n;
    await l1.fundReward(sequencer, 21, reward);
    await enqueueSettlement(stack.db.prisma, settleOf(21, reward), Date.now());
    const row = () => stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "settle:21" } });
    // The owner's rotation lands between the settler's simulation and its broadcast, and the
    // transaction waits in the mempool past the settler's wait for its receipt.
    let rotated = false;
    const settler = settlerWith({
      receiptTimeoutMs: 300,
      beforeBroadcast: async () => {
        if (rotated) return;
        rotated = true;
        await setSettler(account(0x5e771e).address);
        await l1.rpc("evm_setAutomine", [false]);
      },
    });
    try {
      await settler.run();
      expect((await row()).status).toBe("sent");
      // Mined: it reverts Unauthorized. Then the operator sets the key back, before the settler
      // looks at the receipt: the revert is still the key's, not the settlement's.
      await l1.mine(1);
    } finally {
      await l1.rpc("evm_setAutomine", [true]);
      await setSettler(settlerAccount.address);
    }
    const receipt = await l1.client.getTransactionReceipt({ hash: (await row()).txHash! as Hex });
    expect(receipt.status).toBe("reverted");
    await settler.run();
    const owed = await row();
    expect([owed.status, owed.txHash, owed.errorCode]).toEqual([
      "pending",
      null,
      "SETTLER_NOT_AUTHORIZED",
    ]);
    await eventually(async () => {
      await settler.run();
      await l1.mine(1);
      return (await row()).status === "confirmed";
    }, 20_000);
    expect(await settledEvents(21)).toHaveLength(1);
  });

  const settleOf = (block: number, amount: bigint) => ({
    kind: "settle" as const,
    blockNumber: block,
    recipients: [sequencer.address, prover.address],
    amounts: [amount / 4n, amount - amount / 4n],
  });

  /** A settler of the test's own on this L1, retrying at once, with `opts` over that. */
  const settlerWith = (opts: Partial<ConstructorParameters<typeof Settler>[0]> = {}) =>
    settlerOn(stack, l1, opts);

  /** The settler's transactions, the pending ones included. */
  const pendingCount = () =>
    l1.client.getTransactionCount({ address: settlerAccount.address, blockTag: "pending" });

  /** Runs `pass` until settle:<block> is confirmed; then one BlockSettled and one nonce spent. */
  const confirmedOnce = async (block: number, nonce: number, pass: () => Promise<unknown>) => {
    await eventually(async () => {
      await pass();
      const row = await stack.db.prisma.settlement.findUniqueOrThrow({
        where: { key: `settle:${block}` },
      });
      return row.status === "confirmed";
    });
    expect(await settledEvents(block)).toHaveLength(1);
    expect(await l1.client.getTransactionCount({ address: settlerAccount.address })).toBe(
      nonce + 1,
    );
  };

  const settledEvents = async (block: number) =>
    l1.client.getContractEvents({
      address: l1.escrow,
      abi: escrowAbi,
      eventName: "BlockSettled",
      args: { blockNumber: BigInt(block) },
      fromBlock: 0n,
    });

  it("a crash after recording a transaction but before broadcasting it sends it once, later", async () => {
    const reward = 4000n;
    await l1.fundReward(sequencer, 7, reward);
    await enqueueSettlement(stack.db.prisma, settleOf(7, reward), Date.now());
    const crashing = settlerWith({
      beforeBroadcast: async () => {
        throw new Error("process died");
      },
    });
    await crashing.run();
    const sent = await stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "settle:7" } });
    expect(sent.status).toBe("sent");
    expect(sent.txHash).toMatch(/^0x/);
    expect(await settledEvents(7)).toHaveLength(0);

    const settler = stack.aggregator.settler!;
    await eventually(async () => {
      await settler.run();
      const row = await stack.db.prisma.settlement.findUniqueOrThrow({
        where: { key: "settle:7" },
      });
      return row.status === "confirmed";
    });
    expect(await settledEvents(7)).toHaveLength(1);
  });

  it("a crash after broadcasting but before recording completes the row from the chain", async () => {
    const reward = 8000n;
    await l1.fundReward(sequencer, 8, reward);
    const action = settleOf(8, reward);
    await enqueueSettlement(stack.db.prisma, action, Date.now());
    // What the previous process got out before it died: the transaction, and no record of it.
    const wallet = walletOn(l1, settlerAccount);
    const hash = await wallet.writeContract({
      address: l1.escrow,
      abi: escrowAbi,
      functionName: "settle",
      args: [8n, action.recipients, action.amounts],
    });
    await l1.client.waitForTransactionReceipt({ hash });
    const nonce = await l1.client.getTransactionCount({ address: settlerAccount.address });
    const freeBefore = await l1.client.readContract({
      address: l1.escrow,
      abi: escrowAbi,
      functionName: "freeBalance",
      args: [prover.address],
    });

    await stack.aggregator.settler!.run();
    const row = await stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "settle:8" } });
    expect(row.status).toBe("confirmed");
    expect(row.txHash).toBe(hash);
    expect(await settledEvents(8)).toHaveLength(1);
    expect(await l1.client.getTransactionCount({ address: settlerAccount.address })).toBe(nonce);
    expect(
      await l1.client.readContract({
        address: l1.escrow,
        abi: escrowAbi,
        functionName: "freeBalance",
        args: [prover.address],
      }),
    ).toBe(freeBefore);
  });

  it("on a provider that caps eth_getLogs at a few blocks, a settlement already on the chain is still found, not sent again", async () => {
    const CAP = 5n;
    const reward = 3000n;
    await l1.fundReward(sequencer, 10, reward);
    const action = settleOf(10, reward);
    await enqueueSettlement(stack.db.prisma, action, Date.now());
    // The previous process's transaction, and no record of it (as above).
    const hash = await walletOn(l1, settlerAccount).writeContract({
      address: l1.escrow,
      abi: escrowAbi,
      functionName: "settle",
      args: [10n, action.recipients, action.amounts],
    });
    await l1.client.waitForTransactionReceipt({ hash });
    await l1.mine(Number(CAP) * 3);
    const nonce = await l1.client.getTransactionCount({ address: settlerAccount.address });
    // The L1, behind a provider that refuses a log query over more than CAP blocks, as many do.
    const refused: string[] = [];
    const client = clientThrough(l1, async ({ method, params }, node) => {
      if (method !== "eth_getLogs") return undefined;
      const [q] = params as [{ fromBlock: string; toBlock: string }];
      const head = BigInt((await node.request({ method: "eth_blockNumber" })) as string);
      const at = (b: string) => (b === "latest" ? head : b === "earliest" ? 0n : BigInt(b));
      if (at(q.toBlock) - at(q.fromBlock) + 1n <= CAP) return undefined;
      refused.push(`${q.fromBlock}..${q.toBlock}`);
      throw new Error(`query exceeds the max block range of ${CAP}`);
    });
    const settler = settlerWith({ client, logRange: Number(CAP) });
    await settler.run();
    const row = await stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "settle:10" } });
    expect(refused).toEqual([]);
    expect([row.status, row.txHash]).toEqual(["confirmed", hash]);
    expect(await l1.client.getTransactionCount({ address: settlerAccount.address })).toBe(nonce);
  });

  it("a settlement transaction still pending after SETTLER_FEE_BUMP_AFTER_MS is replaced at its nonce with higher fees, and lands once", async () => {
    const reward = 5000n;
    await l1.fundReward(sequencer, 11, reward);
    await enqueueSettlement(stack.db.prisma, settleOf(11, reward), Date.now());
    const row = () => stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "settle:11" } });
    let now = Date.now();
    const warned: Record<string, unknown>[] = [];
    const settler = settlerWith({
      receiptTimeoutMs: 300,
      feeBumpAfterMs: 60_000,
      now: () => now,
      log: { info: () => {}, warn: (o) => warned.push(o as never), error: () => {} },
    });
    const run = async () => {
      now += 10;
      await settler.run();
    };
    const nonce = await l1.client.getTransactionCount({ address: settlerAccount.address });
    const receiptOf = (hash: string) =>
      l1.client.getTransactionReceipt({ hash: hash as `0x${string}` }).catch(() => null);
    await l1.rpc("evm_setAutomine", [false]);
    try {
      await run(); // sent; its receipt does not come within the wait
      const first = await row();
      expect(first.status).toBe("sent");
      // No block takes it (as when its fee fell behind what blocks ask; anvil, unlike a real
      // node, would drop it then, so no block is mined here at all).
      const sent = await l1.client.getTransaction({ hash: first.txHash as `0x${string}` });
      // Before SETTLER_FEE_BUMP_AFTER_MS, it waits.
      await run();
      expect((await row()).txHash).toBe(first.txHash);
      now += 60_000;
      await run();
      const bumped = await row();
      expect(bumped.status).toBe("sent");
      expect(bumped.txHash).not.toBe(first.txHash);
      expect(bumped.nonce).toBe(first.nonce);
      expect(warned.map((o) => o.code)).toContain("SETTLEMENT_FEE_BUMPED");
      const replacement = await l1.client.getTransaction({
        hash: bumped.txHash as `0x${string}`,
      });
      expect(replacement.nonce).toBe(sent.nonce);
      expect(replacement.input).toBe(sent.input);
      expect(replacement.maxFeePerGas! * 1000n).toBeGreaterThanOrEqual(sent.maxFeePerGas! * 1125n);
      expect(replacement.maxPriorityFeePerGas! * 1000n).toBeGreaterThanOrEqual(
        sent.maxPriorityFeePerGas! * 1125n,
      );
      await l1.mine(1);
      expect((await receiptOf(bumped.txHash!))?.status).toBe("success");
    } finally {
      await l1.rpc("evm_setAutomine", [true]);
    }
    await confirmedOnce(11, nonce, run);
  });

  it("a bump never pays past SETTLER_MAX_FEE_PER_GAS_WEI: the next one, which would, is not sent", async () => {
    const reward = 6000n;
    await l1.fundReward(sequencer, 13, reward);
    await enqueueSettlement(stack.db.prisma, settleOf(13, reward), Date.now());
    const row = () => stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "settle:13" } });
    let now = Date.now();
    const warned: Record<string, unknown>[] = [];
    const up = (x: bigint) => (x * 1125n) / 1000n + 1n;
    const nonce = await l1.client.getTransactionCount({ address: settlerAccount.address });
    await l1.rpc("evm_setAutomine", [false]);
    try {
      const first = settlerWith({ receiptTimeoutMs: 300, now: () => now });
      await first.run(); // sent; no block takes it
      const sent = await l1.client.getTransaction({ hash: (await row()).txHash as `0x${string}` });
      // Room for exactly one bump: the least replacement the node takes.
      const cap = up(sent.maxFeePerGas!);
      const settler = settlerWith({
        receiptTimeoutMs: 300,
        feeBumpAfterMs: 60_000,
        maxFeePerGas: cap,
        now: () => now,
        log: { info: () => {}, warn: (o) => warned.push(o as never), error: () => {} },
      });
      now += 60_000;
      await settler.run();
      const bumped = await row();
      expect(bumped.txHash).not.toBe(sent.hash);
      const replacement = await l1.client.getTransaction({
        hash: bumped.txHash as `0x${string}`,
      });
      expect(replacement.maxFeePerGas).toBe(cap);
      expect(replacement.maxPriorityFeePerGas! <= cap).toBe(true);

      // The next bump would need 12.5% over the cap: not sent, said so (once), the row unchanged.
      now += 60_000;
      await settler.run();
      await settler.run();
      const held = await row();
      expect([held.status, held.txHash, held.attempts]).toEqual([
        "sent",
        bumped.txHash,
        bumped.attempts,
      ]);
      const capped = warned.filter((o) => o.code === "SETTLEMENT_FEE_CAPPED");
      expect(capped).toHaveLength(1);
      expect(capped[0]).toMatchObject({ needed: String(up(cap)), cap: String(cap) });
      expect(await pendingCount()).toBe(nonce + 1);
      await l1.mine(1);
    } finally {
      await l1.rpc("evm_setAutomine", [true]);
    }
    await confirmedOnce(13, nonce, async () => {
      now += 10;
      await settlerWith({ now: () => now }).run();
    });
  });

  it("a row whose transaction the node forgot is not sent again while another is pending at its nonce", async () => {
    const reward = 7000n;
    await l1.fundReward(sequencer, 12, reward);
    const action = settleOf(12, reward);
    await enqueueSettlement(stack.db.prisma, action, Date.now());
    const row = () => stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "settle:12" } });
    const nonce = await l1.client.getTransactionCount({ address: settlerAccount.address });
    const warned: Record<string, unknown>[] = [];
    const settler = settlerWith({
      receiptTimeoutMs: 300,
      log: { info: () => {}, warn: (o) => warned.push(o as never), error: () => {} },
    });
    await l1.rpc("evm_setAutomine", [false]);
    try {
      await settler.run().catch(() => {});
      const first = await row();
      expect(first.status).toBe("sent");
      // A process that died after broadcasting a replacement (same nonce, higher fee) and before
      // recording it: the node keeps only the replacement.
      const pending = await l1.client.getTransaction({ hash: first.txHash as `0x${string}` });
      const wallet = walletOn(l1, settlerAccount);
      await wallet.sendTransaction({
        to: pending.to!,
        data: pending.input,
        gas: pending.gas,
        nonce: pending.nonce,
        maxFeePerGas: pending.maxFeePerGas! * 2n,
        maxPriorityFeePerGas: pending.maxPriorityFeePerGas! * 2n + 1n,
      });
      expect(
        await l1.client.getTransaction({ hash: first.txHash as `0x${string}` }).catch(() => null),
      ).toBeNull();
      await stack.db.prisma.settlement.update({
        where: { id: first.id },
        data: { nextAttemptAt: 0n },
      });
      warned.length = 0;
      await settler.run();
      // It waits for that one: nothing sent, no failed try (a send at the next nonce would be
      // refused by the node's estimate, the replacement's settlement being pending).
      expect(warned).toEqual([]);
      expect((await row()).txHash).toBe(first.txHash);
      expect(await pendingCount()).toBe(nonce + 1);
      await l1.mine(1);
    } finally {
      await l1.rpc("evm_setAutomine", [true]);
    }
    await confirmedOnce(12, nonce, async () => {
      await stack.db.prisma.settlement.updateMany({
        where: { key: "settle:12" },
        data: { nextAttemptAt: 0n },
      });
      await settler.run();
    });
  });

  it("a settlement whose block a reorg drops before its confirmations is sent again, once", async () => {
    const reward = 6000n;
    await l1.fundReward(sequencer, 9, reward);
    await enqueueSettlement(stack.db.prisma, settleOf(9, reward), Date.now());
    const settler = settlerWith({ confirmations: 3 });
    const row = () => stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "settle:9" } });
    const snapshot = await l1.rpc("evm_snapshot");
    await settler.run();
    const first = await row();
    expect(first.status).toBe("sent");
    expect(first.receiptBlock).not.toBeNull();
    expect(await settledEvents(9)).toHaveLength(1);

    await l1.rpc("evm_revert", [snapshot]); // the settlement's block is gone
    expect(await settledEvents(9)).toHaveLength(0);
    await l1.mine(1);
    await eventually(async () => {
      await settler.run();
      await l1.mine(1);
      return (await row()).status === "confirmed";
    });
    expect(await settledEvents(9)).toHaveLength(1);
    expect((await row()).txHash).toBe((await settledEvents(9))[0]!.transactionHash);
  });

  it.each([
    // The index booked the block, then undoes it.
    { when: "a reorg deeper than its confirmations drops", seen: true, n: 23 },
    // The index has not seen the block when a longer fork without it takes over: it has nothing
    // to undo, and books the new fork's blocks, where the event is not.
    { when: "a reorg drops before the index booked it", seen: false, n: 24 },
  ])(
    "a confirmed settlement whose block $when is owed again, and lands once",
    async ({ seen, n }) => {
      const index = stack.relay.ctx.escrowIndex!;
      const reward = 6000n;
      await l1.fundReward(sequencer, n, reward);
      await index.poll();
      await enqueueSettlement(stack.db.prisma, settleOf(n, reward), Date.now());
      const row = () =>
        stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: `settle:${n}` } });
      const snapshot = await l1.rpc("evm_snapshot");
      await settlerWith().run(); // one confirmation: confirmed once mined
      expect((await row()).status).toBe("confirmed");
      if (seen) await index.poll();
      await l1.rpc("evm_revert", [snapshot]);
      await l1.mine(3);
      expect(await settledEvents(n)).toHaveLength(0);
      // The relay's own index polls too: whichever pass gets there, it is owed again.
      await eventually(async () => {
        await index.poll();
        return (await row()).status === "sent";
      });
      await eventually(async () => {
        await settlerWith().run();
        await l1.mine(1);
        await index.poll();
        return (await row()).status === "confirmed";
      });
      expect(await settledEvents(n)).toHaveLength(1);
      expect((await row()).txHash).toBe((await settledEvents(n))[0]!.transactionHash);
      // Booked now: later passes leave it confirmed.
      await l1.mine(2);
      await index.poll();
      expect((await row()).status).toBe("confirmed");
    },
  );

  it("takes a log gone from deeper than L1_MAX_REORG_DEPTH as a lost L1: nothing reversed, bids refused", async () => {
    const deep = account(0xf5);
    await l1.fund(deep.address);
    // Opened while the L1 is in step: a lost L1's index books no funding.
    await openFor(stack, l1, 4);
    const snapshot = await l1.rpc("evm_snapshot");
    await l1.deposit(deep, DEPOSIT);
    await l1.rpc("anvil_mine", ["0x50"]); // 80 blocks on top of the deposit
    const head = await l1.client.getBlockNumber({ cacheTime: 0 });
    await eventually(async () => {
      const s = stack.relay.ctx.escrowIndex!.status;
      return s.ok && s.block >= head;
    });
    expect((await collateral(stack, deep.address)).available).toBe(DEPOSIT);
    await l1.rpc("evm_revert", [snapshot]);
    await l1.rpc("anvil_mine", ["0x60"]);
    const index = stack.relay.ctx.escrowIndex!;
    await index.poll();
    const status = index.status;
    expect(status.ok ? "" : status.reason).toMatch(/L1 state lost.*more than 64 blocks/);
    expect((await collateral(stack, deep.address)).available).toBe(DEPOSIT);
    // Only the deposit of the earlier, shallow reorg was ever reversed.
    expect(
      await stack.db.prisma.chainLog.count({ where: { removed: true, event: "Deposited" } }),
    ).toBe(1);
    const bid = await signedBid(deep, 4);
    expect(await relayError(stack.client.submitBid(bid.quote, bid.signature))).toEqual({
      status: 503,
      code: "L1_UNAVAILABLE",
    });
  });

  it("a withdrawal the L1 took before the winner's lock: the lock is reported, the bond shrinks, balances agree", async () => {
    const racer = account(0xf6);
    const index = stack.relay.ctx.escrowIndex!;
    // The index is left in its lost state by the test above: index this one by hand.
    await index.stop();
    await stack.db.prisma.chainCursor.deleteMany();
    await stack.db.prisma.chainLog.deleteMany();
    await index.poll();
    await fundedBid(racer, 5);
    // The prover asks its collateral back on the L1 before the close's lock gets there.
    await requestWithdrawal(racer);
    await closedFor(racer, 5);
    await stack.aggregator.settler!.run();
    const lock = await stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "lock:5" } });
    expect(lock.status).toBe("reverted");
    expect(lock.error).toMatch(/InsufficientFreeBalance/);
    await index.poll();
    await expectBondWithdrawn(racer, 5);
  });

  it("a withdrawal that took the winner's bond before its lock, then cancelled: the bond is back, locked on the escrow", async () => {
    const racer = account(0xe9);
    const index = stack.relay.ctx.escrowIndex!;
    await index.stop(); // polled by hand
    const n = 31;
    await fundedBid(racer, n);
    // The prover asks its collateral back before the close's lock gets to the escrow.
    await requestWithdrawal(racer);
    await closedFor(racer, n);
    await index.poll();
    expect(await bondOf(n)).toBe("0");
    expect((await lockOf(n)).status).toBe("cancelled");
    // Then takes the withdrawal back: the collateral is free on the escrow again, and what the
    // withdrawal took of the bond goes back to it rather than to the prover's free collateral.
    await l1.cancelWithdrawal(racer);
    await index.poll();
    expect(await bondOf(n)).toBe(DEPOSIT.toString());
    expect(await lockOf(n)).toMatchObject({
      status: "pending",
      args: { amount: DEPOSIT.toString() },
    });
    expect(await collateral(stack, racer.address)).toEqual({ available: 0n, locked: DEPOSIT });
    await lockConfirmed(n);
    await expectEscrow(racer, { free: 0n, locked: DEPOSIT, pending: 0n });
  });

  it("a lock that lands after a withdrawal and its cancellation locks the whole bond: the ledger follows", async () => {
    const racer = account(0xe6);
    const index = stack.relay.ctx.escrowIndex!;
    await index.stop(); // polled by hand
    const n = 34;
    await fundedBid(racer, n);
    await closedFor(racer, n);
    // On the L1, before the index has seen either: the prover asks its collateral back and
    // cancels; the lock, sent with the whole bond, lands after both and locks it all.
    await requestWithdrawal(racer);
    await l1.cancelWithdrawal(racer);
    await lockConfirmed(n, false);
    await index.poll();
    expect(await bondOf(n)).toBe(DEPOSIT.toString());
    expect(await collateral(stack, racer.address)).toEqual({ available: 0n, locked: DEPOSIT });
    await expectEscrow(racer, { free: 0n, locked: DEPOSIT, pending: 0n });
  });

  it("a cancelled withdrawal that put a bond back, taken by a reorg: the bond is withdrawn again", async () => {
    const racer = account(0xe7);
    const index = stack.relay.ctx.escrowIndex!;
    await index.stop(); // polled by hand
    const n = 33;
    await fundedBid(racer, n);
    await requestWithdrawal(racer);
    await closedFor(racer, n);
    await index.poll();
    const snapshot = await l1.rpc("evm_snapshot");
    await l1.cancelWithdrawal(racer);
    await index.poll();
    expect(await bondOf(n)).toBe(DEPOSIT.toString());
    // The cancel's block leaves the chain: on the new fork the collateral is still asked back.
    await l1.rpc("evm_revert", [snapshot]);
    await l1.mine(3);
    await index.poll();
    // The lock owed again is cancelled again (the settler sends nothing), and the bond is gone.
    await stack.aggregator.settler!.run();
    expect(await lockOf(n)).toMatchObject({ status: "cancelled", txHash: null });
    await expectBondWithdrawn(racer, n);
  });

  it("a withdrawal that shrank a bond, taken by a reorg and mined again: the bond shrinks once", async () => {
    const racer = account(0xe8);
    const index = stack.relay.ctx.escrowIndex!;
    await index.stop(); // polled by hand
    const n = 32;
    await fundedBid(racer, n);
    await closedFor(racer, n);
    const part = (DEPOSIT * 4n) / 10n;
    const rest = DEPOSIT - part;
    // Before the lock is sent, the prover asks part of its collateral back: the bond shrinks.
    const snapshot = await l1.rpc("evm_snapshot");
    await l1.requestWithdrawal(racer, part);
    await index.poll();
    expect(await bondOf(n)).toBe(rest.toString());
    // A reorg takes the withdrawal's block: the bond is whole again, and so is its owed lock.
    await l1.rpc("evm_revert", [snapshot]);
    await l1.mine(3);
    await index.poll();
    expect(await bondOf(n)).toBe(DEPOSIT.toString());
    expect(await lockOf(n)).toMatchObject({
      status: "pending",
      args: { amount: DEPOSIT.toString() },
    });
    // Mined again on the new fork: the bond shrinks by it once.
    await l1.requestWithdrawal(racer, part);
    await index.poll();
    expect(await bondOf(n)).toBe(rest.toString());
    await lockConfirmed(n);
    await expectEscrow(racer, { free: 0n, locked: rest, pending: part });
  });

  it("a confirmed lock a reorg took before the index booked it, a withdrawal on the new fork: the lock is cancelled, balances agree", async () => {
    const racer = account(0xfd);
    const index = stack.relay.ctx.escrowIndex!;
    await fundedBid(racer, 6);
    await closedFor(racer, 6);
    const lock = () => stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: "lock:6" } });
    const snapshot = await l1.rpc("evm_snapshot");
    await stack.aggregator.settler!.run();
    expect((await lock()).status).toBe("confirmed");
    // The lock's block is gone before the index got to it; on the new fork the prover asks its
    // collateral back first, so the escrow never locks the bond.
    await l1.rpc("evm_revert", [snapshot]);
    await requestWithdrawal(racer);
    await l1.mine(2);
    await index.poll();
    // Owed again before the withdrawal was booked, so the withdrawal shrank it to nothing.
    expect((await lock()).args).toMatchObject({ amount: "0" });
    await eventually(async () => {
      await stack.aggregator.settler!.run();
      await l1.mine(1);
      await index.poll();
      return (await lock()).status === "cancelled";
    });
    await expectBondWithdrawn(racer, 6);
  });

  it("a confirmed lock and slash a reorg took, the bond withdrawn on the new fork: both are cancelled, balances agree", async () => {
    const racer = account(0xfa);
    const index = stack.relay.ctx.escrowIndex!;
    await index.stop(); // polled by hand
    const n = 30;
    await fundedBid(racer, n, 6_000);
    await closedFor(racer, n);
    const row = (kind: string) =>
      stack.db.prisma.settlement.findUniqueOrThrow({ where: { key: `${kind}:${n}` } });
    const sequencerBalances = async () => {
      const [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [sequencer.address]);
      return r;
    };
    const before = await sequencerBalances();
    const snapshot = await l1.rpc("evm_snapshot");
    await stack.aggregator.settler!.run();
    expect((await row("lock")).status).toBe("confirmed");
    // Nobody proves: the deadline passes and the bond is slashed, on both sides.
    await eventually(async () => {
      await stack.aggregator.aggregator.tick();
      return (await stack.client.getBlock(n)).stage === "open_proving";
    });
    await stack.aggregator.settler!.run();
    expect((await row("slash")).status).toBe("confirmed");
    // Both blocks are gone before the index got to them; on the new fork the prover asks its
    // collateral back first: the escrow never locks the bond, so there is nothing to slash.
    await l1.rpc("evm_revert", [snapshot]);
    await requestWithdrawal(racer);
    await l1.mine(2);
    await index.poll();
    await eventually(async () => {
      await stack.aggregator.settler!.run();
      await l1.mine(1);
      await index.poll();
      const pending = ["pending", "sent"];
      return (
        !pending.includes((await row("lock")).status) &&
        !pending.includes((await row("slash")).status)
      );
    });
    expect([(await row("lock")).status, (await row("slash")).status]).toEqual([
      "cancelled",
      "cancelled",
    ]);
    await expectBondWithdrawn(racer, n);
    // The sequencer's share of the slash was taken back: it holds what it held before.
    expect(await sequencerBalances()).toEqual(before);
  });

  it("a database error while booking (a deadlock with a close) keeps the last sync: bids are not refused, the next pass books", async () => {
    const index = stack.relay.ctx.escrowIndex!;
    const who = account(0xfe);
    await l1.fund(who.address);
    await index.poll();
    expect(index.status.ok).toBe(true);
    // The index's next write fails as a deadlock Postgres broke would.
    const db = stack.db.prisma;
    await db.$executeRawUnsafe(`CREATE FUNCTION pb_test_deadlock() RETURNS trigger
      LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$`);
    await db.$executeRawUnsafe(`CREATE TRIGGER pb_test_deadlock BEFORE INSERT ON "ChainLog"
      FOR EACH ROW EXECUTE FUNCTION pb_test_deadlock()`);
    try {
      await l1.deposit(who, DEPOSIT);
      await index.poll();
      expect(index.status.ok).toBe(true);
      expect((await collateral(stack, who.address)).available).toBe(0n);
    } finally {
      await db.$executeRawUnsafe(`DROP TRIGGER pb_test_deadlock ON "ChainLog"`);
      await db.$executeRawUnsafe("DROP FUNCTION pb_test_deadlock()");
    }
    await index.poll();
    expect(index.status.ok).toBe(true);
    expect((await collateral(stack, who.address)).available).toBe(DEPOSIT);
  });

  /**
   * Runs an index pass while another writer is midway: it has taken its first locks (`first`)
   * when the pass starts, and takes `then`'s balance row once the pass waits on it. Either both
   * complete, or Postgres breaks a cycle between them by failing one (the test then fails).
   * The index must be polled by hand (stopped) before the logs the pass books are mined.
   */
  async function passBesideWriter(first: (tx: Tx) => Promise<unknown>, then: string) {
    const index = stack.relay.ctx.escrowIndex!;
    const db = stack.db.prisma;
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let holder = 0;
    const writer = db.$transaction(
      async (tx) => {
        holder = (await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`)[0]!.pid;
        await first(tx);
        await held;
        await tx.$queryRaw`SELECT account FROM "AccountBalance" WHERE account = ${then} FOR UPDATE`;
      },
      { timeout: 30_000 },
    );
    await eventually(async () => holder !== 0);
    const pass = index.poll();
    await eventually(async () => (await blockedBy(db, holder)) > 0);
    release();
    await writer;
    await pass;
    expect(index.status.ok).toBe(true);
  }

  /**
   * Two provers with DEPOSIT each, indexed, the index then polled by hand (stopped); `first`
   * and `second` in the order bid writes take provers in (pb_submit_bids: ORDER BY, the
   * database's collation), `order` their addresses so.
   */
  async function depositedPair(a: number, b: number) {
    const index = stack.relay.ctx.escrowIndex!;
    await index.stop();
    const pair = [account(a), account(b)];
    const order = await stack.db.prisma.$queryRaw<{ p: string }[]>`
      SELECT p FROM unnest(${pair.map((p) => p.address)}::text[]) AS p ORDER BY 1`;
    const [first, second] = order.map((r) => pair.find((p) => p.address === r.p)!);
    for (const p of pair) {
      await l1.fund(p.address);
      await l1.deposit(p, DEPOSIT);
    }
    await index.poll();
    return { pair, order, first: first!, second: second! };
  }

  it("a range's provers are locked in the bid writes' order: a bid batch between two deposits is no deadlock", async () => {
    const { pair, order, first, second } = await depositedPair(0xd1, 0xd2);
    // One range: the second prover's deposit, then the first's.
    await l1.deposit(second!, DEPOSIT);
    await l1.deposit(first!, DEPOSIT);
    // A bid batch for both: both provers' locks, then their balance rows in order, the first's
    // taken when the index pass starts.
    await passBesideWriter(async (tx) => {
      await tx.$queryRaw`SELECT pb_lock_prover(p)::text FROM (SELECT DISTINCT p
        FROM unnest(${order.map((r) => r.p)}::text[]) AS p ORDER BY 1) AS s`;
      await tx.$queryRaw`SELECT account FROM "AccountBalance"
        WHERE account = ${accounts.available(first!.address)} FOR UPDATE`;
    }, accounts.available(second!.address));
    for (const p of pair) {
      expect((await collateral(stack, p.address)).available).toBe(2n * DEPOSIT);
    }
  });

  it("a withdrawal booked while the prover's block is paid is no deadlock: earnings rows first", async () => {
    await stack.relay.ctx.escrowIndex!.stop(); // polled by hand
    const payee = account(0xd3);
    await l1.fund(payee.address);
    await l1.deposit(payee, DEPOSIT);
    await stack.relay.ctx.escrowIndex!.poll();
    await stack.db.prisma.$executeRaw`INSERT INTO "AccountBalance" (account, balance)
      VALUES (${accounts.earnings(payee.address)}, 0) ON CONFLICT DO NOTHING`;
    await requestWithdrawal(payee);
    // A block's payout: its recipients' earnings rows, then the winner's balance rows.
    await passBesideWriter(
      (tx) => tx.$queryRaw`SELECT account FROM "AccountBalance"
        WHERE account = ${accounts.earnings(payee.address)} FOR UPDATE`,
      accounts.available(payee.address),
    );
    expect((await collateral(stack, payee.address)).available).toBe(0n);
  });

  it("undoing a reorg locks its provers in the bid writes' order: a bid batch meanwhile is no deadlock", async () => {
    const index = stack.relay.ctx.escrowIndex!;
    const { pair, first, second } = await depositedPair(0xd4, 0xd5);
    // Two more deposits, booked, then taken by a reorg: undone newest first, the second's first.
    const snapshot = await l1.rpc("evm_snapshot");
    await l1.deposit(first!, DEPOSIT);
    const { block } = await l1.deposit(second!, DEPOSIT);
    await index.poll();
    await l1.rpc("evm_revert", [snapshot]);
    await l1.mine(Number(block) + 2 - Number(await l1.client.getBlockNumber({ cacheTime: 0 })));
    // A bid batch for both: the first's lock taken when the pass starts, the second's row after.
    await passBesideWriter(
      (tx) => tx.$queryRaw`SELECT pb_lock_prover(${first!.address})::text AS locked`,
      accounts.available(second!.address),
    );
    for (const p of pair) expect((await collateral(stack, p.address)).available).toBe(DEPOSIT);
  });

  it("a pass that read a fork another index has moved the cursor past books nothing of it", async () => {
    const index = stack.relay.ctx.escrowIndex!; // stopped by a test above: polled by hand
    const who = account(0xfa1);
    await l1.fund(who.address);
    await index.poll();
    const snapshot = await l1.rpc("evm_snapshot");
    await l1.deposit(who, DEPOSIT); // on the fork that is about to go
    // Another relay's index holds the cursor: this pass reads the fork, then waits for it.
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let holder = 0;
    const other = stack.db.prisma.$transaction(
      async (tx) => {
        holder = (await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`)[0]!.pid;
        await tx.$queryRaw`SELECT block FROM "ChainCursor" FOR UPDATE`;
        await held;
        // Meanwhile the fork went and the other index booked the chain that replaced it.
        const head = await l1.client.getBlock();
        await tx.chainCursor.updateMany({
          data: { block: head.number, blockHash: head.hash, version: { increment: 1 } },
        });
      },
      { timeout: 30_000 },
    );
    await eventually(async () => holder !== 0);
    const pass = index.poll();
    await eventually(async () => (await blockedBy(stack.db.prisma, holder)) > 0);
    await l1.rpc("evm_revert", [snapshot]);
    await l1.mine(2);
    release();
    await other;
    await pass;
    expect((await collateral(stack, who.address)).available).toBe(0n);
    expect(
      await stack.db.prisma.chainLog.count({
        where: { event: "Deposited", args: { path: ["account"], equals: who.address } },
      }),
    ).toBe(0);
    expect(index.status.ok).toBe(true);
  });

  it("books a log again when the chain comes back to the block a reorg had taken it out of", async () => {
    const back = account(0xf7);
    const index = stack.relay.ctx.escrowIndex!; // stopped by the test above: polled by hand
    await l1.fund(back.address);
    const { block } = await l1.deposit(back, DEPOSIT);
    await index.poll();
    expect((await collateral(stack, back.address)).available).toBe(DEPOSIT);
    // As if a reorg had dropped the deposit's block (reversed) and the chain then came back to
    // it: the cursor stands before it again, and the log is still at the same block hash.
    const log = await stack.db.prisma.chainLog.findFirstOrThrow({
      where: { event: "Deposited", args: { path: ["account"], equals: back.address } },
    });
    await stack.db.prisma.$transaction(async (tx) => {
      await tx.chainLog.update({ where: { id: log.id }, data: { removed: true } });
      await reverseMovement(tx, log.movementId!, { ref: log.id, nowMs: Date.now() });
    });
    expect((await collateral(stack, back.address)).available).toBe(0n);
    const before = await l1.client.getBlock({ blockNumber: block - 1n });
    await stack.db.prisma.chainCursor.updateMany({
      data: { block: block - 1n, blockHash: before.hash },
    });
    await index.poll();
    expect((await collateral(stack, back.address)).available).toBe(DEPOSIT);
    const again = await stack.db.prisma.chainLog.findUniqueOrThrow({ where: { id: log.id } });
    expect(again.removed).toBe(false);
    expect(again.movementId).not.toBe(log.movementId);
    // Seen once more, it is not booked a third time.
    await stack.db.prisma.chainCursor.updateMany({
      data: { block: block - 1n, blockHash: before.hash },
    });
    await index.poll();
    expect((await collateral(stack, back.address)).available).toBe(DEPOSIT);
  });

  it("a reorged deposit the ledger already spent is reversed as far as it can be; the rest is a shortfall the prover's next deposit repays, and the index goes on", async () => {
    const spender = account(0xf8);
    const index = stack.relay.ctx.escrowIndex!; // polled by hand, as above
    await l1.fund(spender.address);
    const snapshot = await l1.rpc("evm_snapshot");
    const { block } = await l1.deposit(spender, DEPOSIT);
    await index.poll();
    expect((await collateral(stack, spender.address)).available).toBe(DEPOSIT);
    // The ledger spends most of it (a penalty burned, as the relay books one) before the
    // deposit's block leaves the chain.
    const spent = (DEPOSIT * 3n) / 4n;
    await stack.db.prisma.$transaction((tx) =>
      transfer(tx, "penalty", accounts.available(spender.address), accounts.burn, spent, {
        nowMs: Date.now(),
      }),
    );
    await l1.rpc("evm_revert", [snapshot]);
    await l1.mine(Number(block) + 2 - Number(await l1.client.getBlockNumber({ cacheTime: 0 })));
    await index.poll();
    // The index is in step again: the deposit is reversed, taking what was left of it.
    expect(index.status.ok).toBe(true);
    const log = await stack.db.prisma.chainLog.findFirstOrThrow({
      where: { event: "Deposited", args: { path: ["account"], equals: spender.address } },
    });
    expect(log.removed).toBe(true);
    expect(await collateral(stack, spender.address)).toEqual({ available: 0n, locked: 0n });
    const owed = accounts.shortfall(accounts.available(spender.address));
    const balance = (a: string) => stack.db.prisma.$transaction((tx) => balanceOf(tx, a));
    expect(await balance(owed)).toBe(-spent);
    const reversal = await stack.db.prisma.ledgerEntry.findMany({
      where: { movementId: `${log.movementId}:reversed` },
    });
    expect(reversal.reduce((s, e) => s + BigInt(e.amount.toFixed()), 0n)).toBe(0n);
    // The prover's next deposit repays the shortfall first.
    await l1.deposit(spender, DEPOSIT);
    await index.poll();
    expect(await balance(owed)).toBe(0n);
    expect((await collateral(stack, spender.address)).available).toBe(DEPOSIT - spent);
  });

  /** A new prover whose DEPOSIT the relay's index (polled by hand, as above) has credited. */
  const creditedDeposit = async (seed: number) => {
    const who = account(seed);
    const index = stack.relay.ctx.escrowIndex!;
    await l1.fund(who.address);
    await l1.deposit(who, DEPOSIT);
    await index.poll();
    expect((await collateral(stack, who.address)).available).toBe(DEPOSIT);
    return { who, index };
  };

  it("a node behind the index (a provider's lagging node) undoes nothing: the index waits for it", async () => {
    const { who: late } = await creditedDeposit(0xfa);
    // The same L1 through a node three blocks behind: its head, and no blocks above it.
    const LAG = 3n;
    const lagging = clientThrough(l1, async ({ method, params }, node) => {
      const head = BigInt((await node.request({ method: "eth_blockNumber" })) as string) - LAG;
      if (method === "eth_blockNumber") return `0x${head.toString(16)}`;
      if (method === "eth_getBlockByNumber") {
        const [tag] = params as [string];
        if (tag === "latest" || BigInt(tag) > head) return null;
      }
      return undefined;
    });
    const warned: string[] = [];
    const behind = indexerOn(
      stack,
      { client: lagging, escrow: l1.escrow },
      { info: () => {}, warn: (_o, m) => warned.push(String(m)) },
    );
    expect(await behind.poll()).toBe(0);
    expect(behind.status.ok).toBe(false);
    const log = await stack.db.prisma.chainLog.findFirstOrThrow({
      where: { event: "Deposited", args: { path: ["account"], equals: late.address } },
    });
    expect(log.removed).toBe(false);
    expect((await collateral(stack, late.address)).available).toBe(DEPOSIT);
    expect(warned.join("\n")).toMatch(/not ready/);
    // Caught up, it goes on from the cursor as usual.
    await l1.mine(Number(LAG) + 1);
    await behind.poll();
    expect(behind.status.ok).toBe(true);
    expect((await collateral(stack, late.address)).available).toBe(DEPOSIT);
  });

  it("a block below the head missing from the node that answers (another, lagging backend) only makes the index wait", async () => {
    const who = account(0xfc);
    await l1.fund(who.address);
    // The head from one backend, the blocks from another that has not got the newest yet.
    let split = false;
    const client = clientThrough(l1, async ({ method, params }, node) => {
      if (!split || method !== "eth_getBlockByNumber") return undefined;
      const [tag] = params as [string];
      const head = BigInt((await node.request({ method: "eth_blockNumber" })) as string);
      return tag !== "latest" && BigInt(tag) === head ? null : undefined;
    });
    const index = indexerOn(stack, { client, escrow: l1.escrow }, undefined);
    await index.poll();
    expect(index.status.ok).toBe(true);
    await l1.deposit(who, DEPOSIT);
    split = true;
    await index.poll();
    expect(index.status.ok).toBe(true);
    expect((await collateral(stack, who.address)).available).toBe(0n);
    split = false;
    await index.poll();
    expect((await collateral(stack, who.address)).available).toBe(DEPOSIT);
  });

  it("a withdrawal the ledger cannot explain is booked all the same: the rest is a shortfall, and the index goes on", async () => {
    const { who: odd, index } = await creditedDeposit(0xf9);
    // The ledger took it all, by no rule the escrow knows (nothing for the L1 to undo).
    await stack.db.prisma.$transaction((tx) =>
      transfer(tx, "penalty", accounts.available(odd.address), accounts.burn, DEPOSIT, {
        nowMs: Date.now(),
      }),
    );
    await l1.requestWithdrawal(odd, DEPOSIT);
    await index.poll();
    expect(index.status.ok).toBe(true);
    const [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [odd.address]);
    expect(r!.ledger).toEqual(r!.chain);
    expect(r!.chain).toEqual({ free: 0n, locked: 0n, pending: DEPOSIT });
    const owed = accounts.shortfall(accounts.available(odd.address));
    expect(await stack.db.prisma.$transaction((tx) => balanceOf(tx, owed))).toBe(-DEPOSIT);
  });

  it("a reorg between the index's look at its cursor's block and its read of the blocks after it is undone, not mixed in", async () => {
    const forked = account(0xfb);
    const index = stack.relay.ctx.escrowIndex!; // polled by hand, as above
    await l1.fund(forked.address);
    await index.poll();
    const before = await l1.rpc("evm_snapshot");
    await l1.deposit(forked, DEPOSIT);
    await index.poll();
    expect((await collateral(stack, forked.address)).available).toBe(DEPOSIT);
    const cursor = await stack.db.prisma.chainCursor.findFirstOrThrow();
    // Two more blocks on this chain, not indexed yet.
    await l1.mine(2);
    // Through a node that answers the look at the cursor's block from this chain, then has
    // switched to a longer fork without the deposit when the blocks after it are read.
    let armed = true;
    const switching = clientThrough(l1, async ({ method, params }, node) => {
      if (!armed || method !== "eth_getBlockByNumber") return undefined;
      const [tag] = params as [string];
      if (tag === "latest" || BigInt(tag) !== cursor.block) return undefined;
      armed = false;
      const seen = await node.request({ method, params });
      await l1.rpc("evm_revert", [before]);
      await l1.mine(6);
      return seen;
    });
    const racing = indexerOn(stack, { client: switching, escrow: l1.escrow }, undefined);
    await racing.poll();
    expect(armed).toBe(false);
    // The next pass finds the cursor's block gone and reverses the deposit the fork does not hold.
    await index.poll();
    expect((await collateral(stack, forked.address)).available).toBe(0n);
    const log = await stack.db.prisma.chainLog.findFirstOrThrow({
      where: { event: "Deposited", args: { path: ["account"], equals: forked.address } },
    });
    expect(log.removed).toBe(true);
    expect(index.status.ok).toBe(true);
  });
});
