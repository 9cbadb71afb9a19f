// Attack: grief open proving in COLLATERAL=chain by submitting proofs that do not verify, counting
// on the escrow (which holds the collateral) never hearing of the penalty. An invalid proof burns
// INVALID_PROOF_PENALTY_WEI of the operator's free collateral in the ledger and, through a
// `penalty` settlement written in the same transaction, on the escrow (`penalize`), exactly once:
// even when the settler dies after broadcasting the transaction and before recording its receipt,
// and is started again. Afterwards the escrow and the ledger agree on every wei. And a penalty
// the escrow receives only after a withdrawal took the collateral it would burn burns nothing on
// either side: the index keeps in step.
import { penaltyRef, reconcileEscrow, reverseMovement } from "@prover-boost/chain";
import { accounts, chargePenalty, transfer } from "@prover-boost/db";
import { escrowAbi } from "@prover-boost/escrow";
import { type NodeProof, simProofSystem } from "@prover-boost/proofs";
import type { LeasedJob, RelayClient } from "@prover-boost/sdk";
import { proofNodeOfJob } from "@prover-boost/worker";
import type { Hex, PublicClient } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, sequencer, startStack } from "./harness.ts";
import { relayError, tryLease } from "./support/blocks.ts";
import { fundIndexedReward, type L1, settlerAccount, settlerOn, startL1 } from "./support/l1.ts";
import { balance, openUnclaimed, signIn } from "./support/market-flow.ts";

const DEPOSIT = 10n ** 16n;
const PENALTY = 3n * 10n ** 15n;
const REWARD = 10n ** 15n;
const BLOCK = 1;
const griefer = account(0xb7);

function tampered(p: NodeProof): NodeProof {
  const i = 2 + 2 * Math.floor((p.proof.length - 2) / 4);
  const byte = (Number.parseInt(p.proof.slice(i, i + 2), 16) ^ 0x01).toString(16).padStart(2, "0");
  return { ...p, proof: `${p.proof.slice(0, i)}${byte}${p.proof.slice(i + 2)}` as Hex };
}

describe("an invalid proof in chain mode", () => {
  let l1: L1;
  let stack: Stack;

  beforeAll(async () => {
    l1 = await startL1();
    // The aggregator's duties are driven by hand and its settler stays off: the test plays the
    // settler that dies and the one started after it.
    stack = await startStack({
      env: {
        ...l1.env,
        INVALID_PROOF_PENALTY_WEI: PENALTY.toString(),
        OPEN_PROVING_MIN_COLLATERAL: "1",
      },
      aggregator: false,
    });
    await l1.fund(griefer.address);
    await l1.fund(sequencer.address);
    await l1.deposit(griefer, DEPOSIT);
    await eventually(
      async () =>
        (await stack.client.getProver(griefer.address)).collateral.available === DEPOSIT.toString(),
    );
    await fundIndexedReward(stack, l1, BLOCK, REWARD);
    await openUnclaimed(stack, BLOCK, { txCount: 2, blockReward: REWARD.toString() });
    await eventually(async () => {
      await stack.aggregator.aggregator.tick();
      return (await stack.client.getBlock(BLOCK)).stage === "open_proving";
    }, 30_000);
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    await l1?.stop();
  });

  const penalizedEvents = () =>
    l1.client.getContractEvents({
      address: l1.escrow,
      abi: escrowAbi,
      eventName: "Penalized",
      fromBlock: 0n,
    });

  /** The relay's withholding penalty of the griefer: burned in the ledger, owed to the escrow. */
  const chargeWithholding = () =>
    stack.db.prisma.$transaction((tx) =>
      chargePenalty(tx, {
        kind: "withholding",
        blockNumber: BLOCK,
        jobId: null,
        operator: griefer.address,
        workerId: "w0",
        maxWei: PENALTY,
        onChain: true,
        nowMs: Date.now(),
      }),
    );

  /** The griefer asks `amount` back on the escrow (mined; the index has not seen it). */
  const requestWithdrawal = (amount: bigint) => l1.requestWithdrawal(griefer, amount);

  /** The ledger's burn is what the escrow burned. */
  const expectBurnAsEscrow = async () => {
    const totalBurned = await l1.client.readContract({
      address: l1.escrow,
      abi: escrowAbi,
      functionName: "totalBurned",
    });
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(totalBurned);
  };

  /** The settler's passes until nothing is pending or sent. */
  const sendEverythingOwed = () =>
    eventually(async () => {
      await stack.aggregator.settler!.run();
      return (
        (await stack.db.prisma.settlement.count({
          where: { status: { in: ["pending", "sent"] } },
        })) === 0
      );
    });

  it("burns on the escrow exactly once, even when the settler restarts between send and record", async () => {
    const w: RelayClient = await signIn(stack, griefer, "w0");
    const job: LeasedJob = await eventually(async () => {
      const r = await tryLease(w, 1000);
      return r.status === 200 && "job" in r ? r.job : null;
    }, 30_000);
    const honest = await simProofSystem().prove(proofNodeOfJob(job));
    const bad = tampered(honest);
    expect(await relayError(w.submitResult(job.id, bad.proof, bad.publicInputs))).toEqual({
      status: 422,
      code: "INVALID_PROOF",
    });

    // The ledger burned the penalty and owes the escrow the same burn, in one transaction.
    const [penalty] = await stack.db.prisma.penalty.findMany({ where: { kind: "invalid_proof" } });
    expect(penalty!.amount.toString()).toBe(PENALTY.toString());
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(PENALTY);
    const key = `penalty:${penalty!.id}`;
    const row = () => stack.db.prisma.settlement.findUniqueOrThrow({ where: { key } });
    expect((await row()).status).toBe("pending");
    expect((await row()).args).toEqual({
      prover: griefer.address,
      amount: PENALTY.toString(),
      penaltyId: penalty!.id,
    });

    // The first settler gets the transaction out and dies before it learns of the receipt.
    let broadcast: Hex | null = null;
    const dying = {
      ...l1.client,
      sendRawTransaction: async (args: { serializedTransaction: Hex }) => {
        broadcast = await l1.client.sendRawTransaction(args);
        throw new Error("process died after broadcasting");
      },
    } as unknown as PublicClient;
    const first = settlerOn(stack, l1, { client: dying });
    await first.run();
    expect(broadcast).not.toBeNull();
    expect([(await row()).status, (await row()).txHash]).toEqual(["sent", broadcast]);

    // Started again: it finds its transaction and records it; nothing is sent a second time.
    const nonce = await l1.client.getTransactionCount({ address: settlerAccount.address });
    const restarted = settlerOn(stack, l1);
    await eventually(async () => {
      await restarted.run();
      return (await row()).status === "confirmed";
    });
    expect((await row()).txHash).toBe(broadcast);
    await restarted.run();
    expect(await l1.client.getTransactionCount({ address: settlerAccount.address })).toBe(nonce);

    const events = await penalizedEvents();
    expect(events).toHaveLength(1);
    expect(events[0]!.args).toEqual({
      prover: griefer.address,
      ref: penaltyRef(penalty!.id),
      requested: PENALTY,
      burned: PENALTY,
    });
    expect(
      await l1.client.readContract({
        address: l1.escrow,
        abi: escrowAbi,
        functionName: "totalBurned",
      }),
    ).toBe(PENALTY);

    // A resent penalize with the same ref is refused by the escrow.
    await expect(
      l1.client.simulateContract({
        address: l1.escrow,
        abi: escrowAbi,
        functionName: "penalize",
        args: [griefer.address, PENALTY, penaltyRef(penalty!.id)],
        account: settlerAccount,
      }),
    ).rejects.toThrow(/PenaltyAlreadyApplied/);

    // Once the index has seen the event, the escrow and the ledger agree to the wei.
    await eventually(async () => {
      await stack.relay.ctx.escrowIndex!.poll();
      return (await stack.db.prisma.chainLog.count({ where: { event: "Penalized" } })) === 1;
    });
    const [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [griefer.address]);
    expect(r!.chain.free).toBe(DEPOSIT - PENALTY);
    expect(r!.ledger).toEqual(r!.chain);
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(PENALTY);
  });

  it("a withdrawal the escrow took before the penalty reached it: both burn nothing, both agree", async () => {
    const index = stack.relay.ctx.escrowIndex!;
    await index.stop(); // polled by hand from here on
    const free = DEPOSIT - PENALTY;
    // The relay charges a withholding penalty (in the ledger and as an owed settlement)...
    await chargeWithholding();
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(2n * PENALTY);
    // ...but the operator asks all its free collateral back on the escrow first.
    await requestWithdrawal(free);
    await sendEverythingOwed();
    const events = await penalizedEvents();
    expect(events).toHaveLength(2);
    expect(events[1]!.args).toMatchObject({ requested: PENALTY, burned: 0n });

    // The index books the withdrawal (taking back the unsent penalty's burn) and then the penalty
    // (nothing more to give back), and stays in step.
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    const [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [griefer.address]);
    expect(r!.chain).toEqual({ free: 0n, locked: 0n, pending: free });
    expect(r!.ledger).toEqual(r!.chain);
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(PENALTY);
    expect(
      await l1.client.readContract({
        address: l1.escrow,
        abi: escrowAbi,
        functionName: "totalBurned",
      }),
    ).toBe(PENALTY);
  });

  it("a withdrawal before the penalty, then a new deposit the escrow burns it from: the ledger burns the same", async () => {
    const index = stack.relay.ctx.escrowIndex!;
    const pendingBefore = DEPOSIT - PENALTY;
    const DEPOSIT2 = 5n * 10n ** 15n;
    const DEPOSIT3 = 4n * 10n ** 15n;
    await l1.deposit(griefer, DEPOSIT2);
    await index.poll();
    expect(await balance(stack.db.prisma, accounts.available(griefer.address))).toBe(DEPOSIT2);
    // The relay charges a penalty (burned in the ledger, owed to the escrow)...
    await chargeWithholding();
    // ...the operator asks all its free collateral on the escrow back first (taking the unsent
    // penalty's burn back in the ledger)...
    await requestWithdrawal(DEPOSIT2);
    await index.poll();
    // ...then deposits again before the settler sends `penalize`: the escrow burns it from there.
    await l1.deposit(griefer, DEPOSIT3);
    await sendEverythingOwed();
    const events = await penalizedEvents();
    expect(events).toHaveLength(3);
    expect(events[2]!.args).toMatchObject({ requested: PENALTY, burned: PENALTY });

    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    const [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [griefer.address]);
    expect(r!.chain).toEqual({
      free: DEPOSIT3 - PENALTY,
      locked: 0n,
      pending: pendingBefore + DEPOSIT2,
    });
    expect(r!.ledger).toEqual(r!.chain);
    const totalBurned = await l1.client.readContract({
      address: l1.escrow,
      abi: escrowAbi,
      functionName: "totalBurned",
    });
    expect(totalBurned).toBe(2n * PENALTY);
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(totalBurned);
  });

  it("a withdrawal that took back an unsent penalty's burn, taken by a reorg and mined again: taken back once", async () => {
    const index = stack.relay.ctx.escrowIndex!;
    // Free collateral for a whole penalty.
    await l1.deposit(griefer, DEPOSIT);
    await index.poll();
    const burned = await balance(stack.db.prisma, accounts.burn);
    await chargeWithholding();
    // All the free collateral asked back before `penalize` is sent: the burn is taken back.
    const snapshot = await l1.rpc("evm_snapshot");
    const [before] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [
      griefer.address,
    ]);
    const free = before!.chain.free;
    await requestWithdrawal(free);
    await index.poll();
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(burned);
    // A reorg takes the withdrawal: the penalty is burned in the ledger again, owed in full.
    await l1.rpc("evm_revert", [snapshot]);
    await l1.mine(3);
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(burned + PENALTY);
    // Mined again on the new fork: the burn is taken back once more, no shortfall.
    await requestWithdrawal(free);
    await index.poll();
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(burned);
    const owed = accounts.shortfall(accounts.available(griefer.address));
    expect(await balance(stack.db.prisma, owed)).toBe(0n);
    // The escrow burns nothing (nothing free is left); both sides agree.
    await sendEverythingOwed();
    const events = await penalizedEvents();
    expect(events.at(-1)!.args).toMatchObject({ requested: PENALTY, burned: 0n });
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    const [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [griefer.address]);
    expect(r!.chain).toEqual({ free: 0n, locked: 0n, pending: before!.chain.pending + free });
    expect(r!.ledger).toEqual(r!.chain);
    await expectBurnAsEscrow();
  });

  it("a penalty event whose booking moved nothing, taken by a reorg: undone, and the index goes on", async () => {
    const index = stack.relay.ctx.escrowIndex!;
    await l1.deposit(griefer, DEPOSIT);
    await index.poll();
    // Two penalties, unsent; then a withdrawal that takes the first one's burn back.
    await chargeWithholding();
    await chargeWithholding();
    await requestWithdrawal(DEPOSIT - PENALTY);
    await index.poll();
    const snapshot = await l1.rpc("evm_snapshot");
    // The escrow burns the first from what is left, the second from nothing. Booking the first
    // gives its burn back by taking the second's back: legs that cancel out, no ledger rows.
    await sendEverythingOwed();
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    // A reorg takes both penalties' transactions: the empty booking is undone, not a stop.
    await l1.rpc("evm_revert", [snapshot]);
    await l1.mine(3);
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    // Sent again and booked again: the escrow and the ledger agree.
    await sendEverythingOwed();
    await l1.mine(1);
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    const [r] = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [griefer.address]);
    expect(r!.ledger).toEqual(r!.chain);
    await expectBurnAsEscrow();
  });

  it("a penalty event that moves nothing when the chain comes back to it: a later reorg undoes its first booking once", async () => {
    const index = stack.relay.ctx.escrowIndex!;
    const { prisma } = stack.db;
    const available = accounts.available(griefer.address);
    const earnings = accounts.earnings(griefer.address);
    await l1.deposit(griefer, DEPOSIT);
    await index.poll();
    await chargeWithholding();
    const [before] = await reconcileEscrow(prisma, l1.client, l1.escrow, [griefer.address]);
    const atFork = await l1.client.getBlock({ blockTag: "latest" });
    const snapshot = await l1.rpc("evm_snapshot");
    const [burned, free] = [await balance(prisma, accounts.burn), await balance(prisma, available)];
    // All the free collateral asked back (the unsent penalty's burn taken back), a deposit, then
    // the penalty sent: the escrow burns it from the deposit, and its event books that burn.
    await requestWithdrawal(before!.chain.free);
    await l1.deposit(griefer, DEPOSIT);
    await sendEverythingOwed();
    await index.poll();
    const booked = await prisma.chainLog.findMany({
      where: { blockNumber: { gt: atFork.number }, removed: false },
      orderBy: [{ blockNumber: "desc" }, { logIndex: "desc" }],
    });
    const penalized = booked.find((l) => l.event === "Penalized")!;
    expect(penalized.movementId).not.toBeNull();
    // The chain leaves those blocks and comes back to them, undone and booked again as the index
    // does. Meanwhile the griefer was paid: the withdrawal booked again takes its earnings, not
    // the penalty's burn, so the penalty's event moves nothing the second time.
    await prisma.$transaction(async (tx) => {
      for (const log of booked) {
        await tx.chainLog.update({ where: { id: log.id }, data: { removed: true } });
        if (log.movementId) await reverseMovement(tx, log.movementId, { ref: log.id, nowMs: 0 });
      }
      await transfer(tx, "payout", accounts.rewards, earnings, PENALTY, { nowMs: 0 });
    });
    await prisma.chainCursor.updateMany({ data: { block: atFork.number, blockHash: atFork.hash } });
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    const again = await prisma.chainLog.findUniqueOrThrow({ where: { id: penalized.id } });
    expect([again.removed, again.movementId]).toEqual([false, null]);
    // A reorg then takes those blocks for good: each booking still on them is undone once, and
    // the ledger is back where it stood at the fork, the payout aside.
    const head = await l1.client.getBlockNumber({ cacheTime: 0 });
    await l1.rpc("evm_revert", [snapshot]);
    await l1.mine(Number(head - atFork.number) + 2);
    await index.poll();
    expect(index.status.ok ? "" : index.status.reason).toBe("");
    expect([await balance(prisma, accounts.burn), await balance(prisma, available)]).toEqual([
      burned,
      free,
    ]);
    await prisma.$transaction((tx) =>
      transfer(tx, "payout", earnings, accounts.rewards, PENALTY, { nowMs: 0 }),
    );
    await sendEverythingOwed();
    await index.poll();
    const [r] = await reconcileEscrow(prisma, l1.client, l1.escrow, [griefer.address]);
    expect(r!.ledger).toEqual(r!.chain);
    await expectBurnAsEscrow();
  });
});
