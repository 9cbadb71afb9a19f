// The escrow's money paths end to end on a private anvil: deposits, a block funded, bonded,
// released and settled in one transaction, slashes split between sequencer and burn, refunds,
// and withdrawals after the delay, each movement announced by an event.
import { EscrowBlockState, escrowAbi } from "@prover-boost/escrow";
import { type Address, type Hash, zeroAddress } from "viem";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  balanceOf,
  blockInfo,
  deployFresh,
  type EscrowChain,
  ether,
  roles,
  send,
  startEscrowChain,
} from "./support/escrow-chain.ts";

let chain: EscrowChain;
let escrow: Address;
const A = roles.proverA.address;
const B = roles.proverB.address;
const SEQ = roles.sequencer.address;

beforeAll(async () => {
  chain = await startEscrowChain();
});
afterAll(async () => {
  await chain?.stop();
});
beforeEach(async () => {
  escrow = await deployFresh(chain, { withdrawalDelay: 600n, slashToSequencerBps: 2500n });
});

/** The escrow events a transaction emitted, as { eventName, args }. */
async function eventsOf(hash: Hash) {
  const receipt = await chain.publicClient.getTransactionReceipt({ hash });
  const logs = await chain.publicClient.getContractEvents({
    address: escrow,
    abi: escrowAbi,
    fromBlock: receipt.blockNumber,
    toBlock: receipt.blockNumber,
  });
  return logs
    .filter((l) => l.transactionHash === hash)
    .map((l) => ({ eventName: l.eventName, args: l.args as Record<string, unknown> }));
}

describe("a proven block", () => {
  it("is funded, bonded, released and settled, paying the split into free balances", async () => {
    let h = await send(chain, escrow, "proverA", "deposit", [], ether(10));
    expect(await eventsOf(h)).toEqual([
      { eventName: "Deposited", args: { account: A, from: A, amount: ether(10) } },
    ]);
    h = await send(chain, escrow, "outsider", "depositFor", [B], ether(3));
    expect(await eventsOf(h)).toEqual([
      {
        eventName: "Deposited",
        args: { account: B, from: roles.outsider.address, amount: ether(3) },
      },
    ]);
    h = await send(chain, escrow, "sequencer", "fundReward", [7n], ether(2));
    expect(await eventsOf(h)).toEqual([
      { eventName: "RewardFunded", args: { blockNumber: 7n, sequencer: SEQ, amount: ether(2) } },
    ]);
    expect(await blockInfo(chain, escrow, 7n)).toEqual({
      state: EscrowBlockState.Funded,
      sequencer: SEQ,
      reward: ether(2),
      prover: zeroAddress,
      bond: 0n,
    });

    h = await send(chain, escrow, "settler", "lockBond", [7n, A, ether(4)]);
    expect(await eventsOf(h)).toEqual([
      { eventName: "BondLocked", args: { blockNumber: 7n, prover: A, amount: ether(4) } },
    ]);
    expect(await balanceOf(chain, escrow, A)).toMatchObject({ free: ether(6), locked: ether(4) });
    expect((await blockInfo(chain, escrow, 7n)).bond).toBe(ether(4));

    h = await send(chain, escrow, "settler", "releaseBond", [7n]);
    expect(await eventsOf(h)).toEqual([
      { eventName: "BondReleased", args: { blockNumber: 7n, prover: A, amount: ether(4) } },
    ]);
    expect(await balanceOf(chain, escrow, A)).toMatchObject({ free: ether(10), locked: 0n });

    h = await send(chain, escrow, "settler", "settle", [
      7n,
      [A, B, SEQ],
      [ether(1), 7n * 10n ** 17n, 3n * 10n ** 17n],
    ]);
    expect(await eventsOf(h)).toEqual([
      { eventName: "RewardPaid", args: { blockNumber: 7n, recipient: A, amount: ether(1) } },
      { eventName: "RewardPaid", args: { blockNumber: 7n, recipient: B, amount: 7n * 10n ** 17n } },
      {
        eventName: "RewardPaid",
        args: { blockNumber: 7n, recipient: SEQ, amount: 3n * 10n ** 17n },
      },
      { eventName: "BlockSettled", args: { blockNumber: 7n, reward: ether(2), recipients: 3n } },
    ]);
    expect((await balanceOf(chain, escrow, A)).free).toBe(ether(11));
    expect((await balanceOf(chain, escrow, B)).free).toBe(ether(3) + 7n * 10n ** 17n);
    expect((await balanceOf(chain, escrow, SEQ)).free).toBe(3n * 10n ** 17n);
    expect((await blockInfo(chain, escrow, 7n)).state).toBe(EscrowBlockState.Settled);
    expect(await chain.publicClient.getBalance({ address: escrow })).toBe(ether(15));
  });

  it("settling releases a bond still locked, in the same transaction", async () => {
    await send(chain, escrow, "proverA", "deposit", [], ether(5));
    await send(chain, escrow, "sequencer", "fundReward", [8n], ether(1));
    await send(chain, escrow, "settler", "lockBond", [8n, A, ether(5)]);
    const h = await send(chain, escrow, "settler", "settle", [8n, [A], [ether(1)]]);
    expect((await eventsOf(h)).map((e) => e.eventName)).toEqual([
      "BondReleased",
      "RewardPaid",
      "BlockSettled",
    ]);
    expect(await balanceOf(chain, escrow, A)).toMatchObject({ free: ether(6), locked: 0n });
    expect(await blockInfo(chain, escrow, 8n)).toMatchObject({ prover: zeroAddress, bond: 0n });
  });

  it("a zero reward settles with an empty split", async () => {
    await send(chain, escrow, "sequencer", "fundReward", [9n], 0n);
    await send(chain, escrow, "settler", "settle", [9n, [], []]);
    expect((await blockInfo(chain, escrow, 9n)).state).toBe(EscrowBlockState.Settled);
  });
});

describe("a missed deadline", () => {
  it("slashes the bond: the sequencer's share to its free balance, the rest burned", async () => {
    await send(chain, escrow, "proverA", "deposit", [], ether(10));
    await send(chain, escrow, "proverB", "deposit", [], ether(10));
    await send(chain, escrow, "sequencer", "fundReward", [3n], ether(2));
    await send(chain, escrow, "settler", "lockBond", [3n, A, ether(4)]);
    const burnBefore = await chain.publicClient.getBalance({ address: zeroAddress });
    const h = await send(chain, escrow, "settler", "slashBond", [3n]);
    expect(await eventsOf(h)).toEqual([
      {
        eventName: "BondSlashed",
        args: {
          blockNumber: 3n,
          prover: A,
          sequencer: SEQ,
          amount: ether(4),
          toSequencer: ether(1),
          burned: ether(3),
        },
      },
    ]);
    expect(await balanceOf(chain, escrow, A)).toMatchObject({ free: ether(6), locked: 0n });
    expect((await balanceOf(chain, escrow, SEQ)).free).toBe(ether(1));
    expect(await chain.publicClient.getBalance({ address: zeroAddress })).toBe(
      burnBefore + ether(3),
    );
    expect(
      await chain.publicClient.readContract({
        address: escrow,
        abi: escrowAbi,
        functionName: "totalBurned",
      }),
    ).toBe(ether(3));
    expect(await chain.publicClient.getBalance({ address: escrow })).toBe(ether(19));

    // The block is still funded: it is bonded to the next winner and settled.
    expect((await blockInfo(chain, escrow, 3n)).state).toBe(EscrowBlockState.Funded);
    await send(chain, escrow, "settler", "lockBond", [3n, B, ether(4)]);
    await send(chain, escrow, "settler", "settle", [3n, [B], [ether(2)]]);
    expect(await balanceOf(chain, escrow, B)).toMatchObject({ free: ether(12), locked: 0n });
  });

  it("rounds the sequencer's share down; a 0 bps escrow burns the whole bond", async () => {
    const zero = await deployFresh(chain, { slashToSequencerBps: 0n });
    await send(chain, zero, "proverA", "deposit", [], 999n);
    await send(chain, zero, "sequencer", "fundReward", [1n], 0n);
    await send(chain, zero, "settler", "lockBond", [1n, A, 999n]);
    await send(chain, zero, "settler", "slashBond", [1n]);
    expect((await balanceOf(chain, zero, SEQ)).free).toBe(0n);
    expect(await chain.publicClient.getBalance({ address: zero })).toBe(0n);

    await send(chain, escrow, "proverA", "deposit", [], 999n);
    await send(chain, escrow, "sequencer", "fundReward", [1n], 0n);
    await send(chain, escrow, "settler", "lockBond", [1n, A, 999n]);
    await send(chain, escrow, "settler", "slashBond", [1n]);
    expect((await balanceOf(chain, escrow, SEQ)).free).toBe(249n);
    expect(await chain.publicClient.getBalance({ address: escrow })).toBe(249n);
  });
});

describe("an abandoned block", () => {
  it("is refunded to its sequencer's free balance, releasing any bond", async () => {
    await send(chain, escrow, "proverA", "deposit", [], ether(1));
    await send(chain, escrow, "sequencer", "fundReward", [4n], ether(2));
    await send(chain, escrow, "settler", "lockBond", [4n, A, ether(1)]);
    const h = await send(chain, escrow, "settler", "refundReward", [4n]);
    expect(await eventsOf(h)).toEqual([
      { eventName: "BondReleased", args: { blockNumber: 4n, prover: A, amount: ether(1) } },
      { eventName: "RewardRefunded", args: { blockNumber: 4n, sequencer: SEQ, amount: ether(2) } },
    ]);
    expect((await balanceOf(chain, escrow, SEQ)).free).toBe(ether(2));
    expect((await balanceOf(chain, escrow, A)).free).toBe(ether(1));
    expect((await blockInfo(chain, escrow, 4n)).state).toBe(EscrowBlockState.Refunded);
  });
});

describe("withdrawals", () => {
  it("pay the depositor after the delay; a new request restarts the clock", async () => {
    await send(chain, escrow, "proverA", "deposit", [], ether(10));
    let h = await send(chain, escrow, "proverA", "requestWithdrawal", [ether(3)]);
    const [first] = await eventsOf(h);
    expect(first?.eventName).toBe("WithdrawalRequested");
    expect(first?.args).toMatchObject({ account: A, amount: ether(3), pending: ether(3) });
    const readyAt1 = first?.args.readyAt as bigint;
    expect(await balanceOf(chain, escrow, A)).toEqual({
      free: ether(7),
      locked: 0n,
      pending: ether(3),
      withdrawableAt: readyAt1,
    });

    await chain.testClient.increaseTime({ seconds: 300 });
    h = await send(chain, escrow, "proverA", "requestWithdrawal", [ether(1)]);
    const readyAt2 = (await eventsOf(h))[0]?.args.readyAt as bigint;
    expect(readyAt2).toBeGreaterThanOrEqual(readyAt1 + 300n);

    await chain.testClient.increaseTime({ seconds: 600 });
    await chain.testClient.mine({ blocks: 1 });
    const walletBefore = await chain.publicClient.getBalance({ address: A });
    h = await send(chain, escrow, "proverA", "completeWithdrawal");
    const receipt = await chain.publicClient.getTransactionReceipt({ hash: h });
    const gas = receipt.gasUsed * receipt.effectiveGasPrice;
    expect(await chain.publicClient.getBalance({ address: A })).toBe(walletBefore + ether(4) - gas);
    expect(await eventsOf(h)).toEqual([
      { eventName: "Withdrawn", args: { account: A, amount: ether(4) } },
    ]);
    expect(await balanceOf(chain, escrow, A)).toEqual({
      free: ether(6),
      locked: 0n,
      pending: 0n,
      withdrawableAt: 0n,
    });
  });

  it("a cancelled request returns to free balance", async () => {
    await send(chain, escrow, "proverA", "deposit", [], ether(2));
    await send(chain, escrow, "proverA", "requestWithdrawal", [ether(2)]);
    const h = await send(chain, escrow, "proverA", "cancelWithdrawal");
    expect(await eventsOf(h)).toEqual([
      { eventName: "WithdrawalCancelled", args: { account: A, amount: ether(2) } },
    ]);
    expect(await balanceOf(chain, escrow, A)).toMatchObject({ free: ether(2), pending: 0n });
  });
});

describe("administration", () => {
  it("the owner rotates the settler, registers sequencers and hands over ownership, with events", async () => {
    let h = await send(chain, escrow, "owner", "setSettler", [roles.outsider.address]);
    expect(await eventsOf(h)).toEqual([
      {
        eventName: "SettlerChanged",
        args: { previousSettler: roles.settler.address, newSettler: roles.outsider.address },
      },
    ]);
    h = await send(chain, escrow, "owner", "setSequencer", [roles.outsider.address, true]);
    expect(await eventsOf(h)).toEqual([
      { eventName: "SequencerSet", args: { sequencer: roles.outsider.address, allowed: true } },
    ]);
    await send(chain, escrow, "outsider", "fundReward", [5n], 1n);
    expect((await blockInfo(chain, escrow, 5n)).sequencer).toBe(roles.outsider.address);
    h = await send(chain, escrow, "owner", "transferOwnership", [roles.sequencer2.address]);
    expect((await eventsOf(h))[0]?.eventName).toBe("OwnershipTransferred");
    await send(chain, escrow, "sequencer2", "setSettler", [roles.settler.address]);
    const read = (functionName: "owner" | "settler") =>
      chain.publicClient.readContract({ address: escrow, abi: escrowAbi, functionName });
    expect(await read("owner")).toBe(roles.sequencer2.address);
    expect(await read("settler")).toBe(roles.settler.address);
  });
});
