// The escrow refuses what no honest party needs: callers without the role, a second settlement,
// withdrawing bonded funds, early withdrawals, splits that do not add up, and re-entry while it
// sends ETH. Every refusal is a custom error and leaves the contract's state as it was.

import { escrowAbi, escrowBytecode } from "@prover-boost/escrow";
import { compileSolidity } from "@prover-boost/escrow/compile";
import { type Address, encodeDeployData, parseEventLogs, zeroAddress } from "viem";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  balanceOf,
  deployFresh,
  type EscrowChain,
  ether,
  revertOf,
  roles,
  send,
  snapshot,
  startEscrowChain,
} from "./support/escrow-chain.ts";

let chain: EscrowChain;
let escrow: Address;
const A = roles.proverA.address;
const B = roles.proverB.address;
const everyone = [A, B, roles.sequencer.address, roles.settler.address, roles.outsider.address];

beforeAll(async () => {
  chain = await startEscrowChain();
});
afterAll(async () => {
  await chain?.stop();
});
beforeEach(async () => {
  escrow = await deployFresh(chain, { withdrawalDelay: 3600n, slashToSequencerBps: 2500n });
  await send(chain, escrow, "proverA", "deposit", [], ether(10));
  await send(chain, escrow, "proverB", "deposit", [], ether(5));
  await send(chain, escrow, "sequencer", "fundReward", [1n], ether(2));
});

/** Asserts the call reverts with `error` and that nothing observable changed. */
async function refused(
  role: Parameters<typeof revertOf>[2],
  fn: Parameters<typeof revertOf>[3],
  args: readonly unknown[],
  error: string,
  value?: bigint,
) {
  const before = await snapshot(chain, escrow, everyone, [1n, 2n]);
  expect(await revertOf(chain, escrow, role, fn, args, value)).toBe(error);
  // The same transaction sent anyway (fixed gas, so no estimate stops it) is mined and reverts.
  const hash = await chain.wallet(role).writeContract({
    address: escrow,
    abi: escrowAbi,
    functionName: fn,
    args,
    value,
    gas: 300_000n,
  } as never);
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
  expect(receipt.status).toBe("reverted");
  expect(await snapshot(chain, escrow, everyone, [1n, 2n])).toEqual(before);
}

describe("roles", () => {
  it("only the settler locks, releases, slashes, settles and refunds", async () => {
    for (const role of ["outsider", "owner", "sequencer", "proverA"] as const) {
      await refused(role, "lockBond", [1n, A, ether(1)], "Unauthorized");
      await refused(role, "settle", [1n, [A], [ether(2)]], "Unauthorized");
      await refused(role, "refundReward", [1n], "Unauthorized");
    }
    await send(chain, escrow, "settler", "lockBond", [1n, A, ether(1)]);
    await refused("proverA", "releaseBond", [1n], "Unauthorized");
    await refused("sequencer", "slashBond", [1n], "Unauthorized");
  });

  it("only the owner rotates the settler, and the old settler loses its power", async () => {
    await refused("settler", "setSettler", [roles.outsider.address], "Unauthorized");
    await refused("outsider", "transferOwnership", [roles.outsider.address], "Unauthorized");
    await refused("owner", "setSettler", [zeroAddress], "ZeroAddress");
    await send(chain, escrow, "owner", "setSettler", [roles.outsider.address]);
    await refused("settler", "lockBond", [1n, A, ether(1)], "Unauthorized");
    expect(await revertOf(chain, escrow, "outsider", "lockBond", [1n, A, ether(1)])).toBe(
      undefined,
    );
  });

  it("only registered sequencers fund rewards, so no one can take a block number first", async () => {
    await refused("outsider", "fundReward", [2n], "Unauthorized", ether(1));
    await refused("proverA", "fundReward", [2n], "Unauthorized", 0n);
    await refused("sequencer", "setSequencer", [roles.outsider.address, true], "Unauthorized");
    await refused("owner", "setSequencer", [zeroAddress, true], "ZeroAddress");
    await send(chain, escrow, "owner", "setSequencer", [roles.sequencer.address, false]);
    await refused("sequencer", "fundReward", [2n], "Unauthorized", ether(1));
    // Its funded block still settles.
    await send(chain, escrow, "settler", "settle", [1n, [A], [ether(2)]]);
  });

  it("the constructor refuses a zero settler and a slash share above 100%", async () => {
    const deploy = (settler: Address, bps: bigint) =>
      chain.publicClient
        .estimateGas({
          account: roles.owner,
          data: encodeDeploy(settler, bps),
        })
        .then(
          () => "deployed",
          (e: Error) => e.message,
        );
    expect(await deploy(zeroAddress, 0n)).toMatch(/reverted/i);
    expect(await deploy(roles.settler.address, 10_001n)).toMatch(/reverted/i);
    expect(await deploy(roles.settler.address, 10_000n)).toBe("deployed");
  });
});

describe("settlement happens once", () => {
  it("a settled block cannot be settled, refunded, bonded or funded again", async () => {
    await send(chain, escrow, "settler", "settle", [1n, [A], [ether(2)]]);
    await refused("settler", "settle", [1n, [A], [ether(2)]], "BlockClosed");
    await refused("settler", "settle", [1n, [B], [ether(2)]], "BlockClosed");
    await refused("settler", "refundReward", [1n], "BlockClosed");
    await refused("settler", "lockBond", [1n, A, ether(1)], "BlockClosed");
    await refused("sequencer", "fundReward", [1n], "RewardAlreadyFunded", ether(2));
  });

  it("a refunded block cannot be settled", async () => {
    await send(chain, escrow, "settler", "refundReward", [1n]);
    await refused("settler", "settle", [1n, [A], [ether(2)]], "BlockClosed");
  });

  it("a block is funded once, by one sequencer", async () => {
    await refused("sequencer2", "fundReward", [1n], "RewardAlreadyFunded", ether(3));
  });

  it("a split must pay exactly the funded reward to real addresses", async () => {
    await refused("settler", "settle", [1n, [A, B], [ether(1), ether(2)]], "SplitMismatch");
    await refused("settler", "settle", [1n, [A], [ether(1)]], "SplitMismatch");
    await refused("settler", "settle", [1n, [A, B], [ether(2)]], "LengthMismatch");
    await refused("settler", "settle", [1n, [zeroAddress], [ether(2)]], "ZeroAddress");
    await refused("settler", "settle", [2n, [A], [0n]], "BlockNotFunded");
  });
});

describe("bonds", () => {
  it("cannot bond an unfunded block, a block twice, or more than the prover's free funds", async () => {
    await refused("settler", "lockBond", [2n, A, ether(1)], "BlockNotFunded");
    await refused("settler", "lockBond", [1n, A, ether(11)], "InsufficientFreeBalance");
    await refused("settler", "lockBond", [1n, A, 0n], "ZeroAmount");
    await refused("settler", "lockBond", [1n, zeroAddress, ether(1)], "ZeroAddress");
    await send(chain, escrow, "settler", "lockBond", [1n, A, ether(1)]);
    await refused("settler", "lockBond", [1n, B, ether(1)], "BondAlreadyLocked");
  });

  it("cannot release or slash a bond that is not there", async () => {
    await refused("settler", "releaseBond", [1n], "NoBondLocked");
    await refused("settler", "slashBond", [1n], "NoBondLocked");
    await refused("settler", "slashBond", [2n], "BlockNotFunded");
    await send(chain, escrow, "settler", "lockBond", [1n, A, ether(1)]);
    await send(chain, escrow, "settler", "slashBond", [1n]);
    await refused("settler", "slashBond", [1n], "NoBondLocked");
    await refused("settler", "releaseBond", [1n], "NoBondLocked");
  });

  it("funds asked back are out of the settler's reach", async () => {
    await send(chain, escrow, "proverB", "requestWithdrawal", [ether(5)]);
    await refused("settler", "lockBond", [1n, B, ether(1)], "InsufficientFreeBalance");
  });
});

describe("penalties", () => {
  const ref1 = `0x${"01".repeat(32)}` as const;
  const ref2 = `0x${"02".repeat(32)}` as const;
  const burned = () =>
    chain.publicClient.readContract({
      address: escrow,
      abi: escrowAbi,
      functionName: "totalBurned",
    });

  it("only the settler penalizes, and never a zero amount or address", async () => {
    for (const role of ["outsider", "owner", "sequencer", "proverA"] as const) {
      await refused(role, "penalize", [A, ether(1), ref1], "Unauthorized");
    }
    await refused("settler", "penalize", [A, 0n, ref1], "ZeroAmount");
    await refused("settler", "penalize", [zeroAddress, ether(1), ref1], "ZeroAddress");
  });

  it("a penalty burns once per ref, however often it is sent", async () => {
    const eth = await chain.publicClient.getBalance({ address: escrow });
    await send(chain, escrow, "settler", "penalize", [A, ether(1), ref1]);
    expect((await balanceOf(chain, escrow, A)).free).toBe(ether(9));
    expect(await burned()).toBe(ether(1));
    expect(await chain.publicClient.getBalance({ address: escrow })).toBe(eth - ether(1));
    await refused("settler", "penalize", [A, ether(1), ref1], "PenaltyAlreadyApplied");
    await refused("settler", "penalize", [B, ether(2), ref1], "PenaltyAlreadyApplied");
    // Another penalty is another ref.
    await send(chain, escrow, "settler", "penalize", [A, ether(1), ref2]);
    expect((await balanceOf(chain, escrow, A)).free).toBe(ether(8));
  });

  it("takes only free funds: never more than there is, never a bond or a pending withdrawal", async () => {
    await send(chain, escrow, "settler", "lockBond", [1n, A, ether(7)]);
    await send(chain, escrow, "proverA", "requestWithdrawal", [ether(2)]);
    const hash = await send(chain, escrow, "settler", "penalize", [A, ether(5), ref1]);
    const receipt = await chain.publicClient.getTransactionReceipt({ hash });
    const [event] = parseEventLogs({ abi: escrowAbi, logs: receipt.logs, eventName: "Penalized" });
    expect(event?.args).toEqual({ prover: A, ref: ref1, requested: ether(5), burned: ether(1) });
    const a = await balanceOf(chain, escrow, A);
    expect([a.free, a.locked, a.pending]).toEqual([0n, ether(7), ether(2)]);
    expect(await burned()).toBe(ether(1));
    // Nothing free left: the penalty is applied (its ref used) and burns nothing.
    await send(chain, escrow, "settler", "penalize", [A, ether(5), ref2]);
    expect(await burned()).toBe(ether(1));
    await refused("settler", "penalize", [A, ether(5), ref2], "PenaltyAlreadyApplied");
    expect(
      await chain.publicClient.readContract({
        address: escrow,
        abi: escrowAbi,
        functionName: "penaltyApplied",
        args: [ref2],
      }),
    ).toBe(true);
  });
});

describe("withdrawals", () => {
  it("locked funds cannot be asked back", async () => {
    await send(chain, escrow, "settler", "lockBond", [1n, A, ether(8)]);
    await refused("proverA", "requestWithdrawal", [ether(3)], "InsufficientFreeBalance");
    await send(chain, escrow, "proverA", "requestWithdrawal", [ether(2)]);
    await refused("proverA", "requestWithdrawal", [1n], "InsufficientFreeBalance");
  });

  it("pays only after the delay, once, and only what was asked", async () => {
    await refused("proverA", "completeWithdrawal", [], "NoPendingWithdrawal");
    await refused("proverA", "requestWithdrawal", [0n], "ZeroAmount");
    await send(chain, escrow, "proverA", "requestWithdrawal", [ether(4)]);
    await refused("proverA", "completeWithdrawal", [], "WithdrawalNotReady");
    await chain.testClient.increaseTime({ seconds: 3590 });
    await chain.testClient.mine({ blocks: 1 });
    await refused("proverA", "completeWithdrawal", [], "WithdrawalNotReady");
    await refused("proverB", "completeWithdrawal", [], "NoPendingWithdrawal");
    await chain.testClient.increaseTime({ seconds: 10 });
    await chain.testClient.mine({ blocks: 1 });
    await send(chain, escrow, "proverA", "completeWithdrawal");
    await refused("proverA", "completeWithdrawal", [], "NoPendingWithdrawal");
    await refused("proverA", "cancelWithdrawal", [], "NoPendingWithdrawal");
  });

  it("a deposit must carry ETH, and plain transfers are refused", async () => {
    await refused("proverA", "deposit", [], "ZeroAmount", 0n);
    await refused("proverA", "depositFor", [zeroAddress], "ZeroAddress", ether(1));
    const before = await chain.publicClient.getBalance({ address: escrow });
    await expect(
      chain.wallet("outsider").sendTransaction({ to: escrow, value: ether(1) }),
    ).rejects.toThrow();
    expect(await chain.publicClient.getBalance({ address: escrow })).toBe(before);
  });
});

// A receiver that, when paid, calls back into the escrow: mode 0 catches what the re-entry
// reverts with and records it, mode 1 lets it bubble up, mode 2 re-enters with a deposit of
// what it just received, mode 3 refuses the payment outright.
const attackerSource = `
// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;
interface IEscrow {
  function deposit() external payable;
  function requestWithdrawal(uint256 amount) external;
  function completeWithdrawal() external;
}
contract Reenterer {
  IEscrow public immutable escrow;
  uint8 public mode;
  uint256 public received;
  uint256 public calls;
  bytes public reentryError;
  constructor(IEscrow e) { escrow = e; }
  function setMode(uint8 m) external { mode = m; }
  function fund(uint256 amount) external payable {
    escrow.deposit{value: msg.value}();
    escrow.requestWithdrawal(amount);
  }
  function withdraw() external { escrow.completeWithdrawal(); }
  receive() external payable {
    calls += 1;
    received += msg.value;
    if (mode == 0) {
      try escrow.completeWithdrawal() {} catch (bytes memory err) { reentryError = err; }
    } else if (mode == 1) {
      escrow.completeWithdrawal();
    } else if (mode == 2) {
      try escrow.deposit{value: msg.value}() {} catch (bytes memory err) { reentryError = err; }
    } else {
      revert("no");
    }
  }
}`;

describe("reentrancy", () => {
  const compiled = compileSolidity({ "Reenterer.sol": attackerSource }).Reenterer!;
  const attackerAbi = compiled.abi as never;
  let attacker: Address;

  async function attackerCall(fn: string, args: unknown[] = [], value?: bigint, gas?: bigint) {
    const hash = await chain.wallet("outsider").writeContract({
      address: attacker,
      abi: attackerAbi,
      functionName: fn,
      args,
      value,
      gas,
    } as never);
    return chain.publicClient.waitForTransactionReceipt({ hash });
  }
  const read = (fn: string) =>
    chain.publicClient.readContract({
      address: attacker,
      abi: attackerAbi,
      functionName: fn,
    } as never) as Promise<unknown>;

  beforeEach(async () => {
    escrow = await deployFresh(chain, { withdrawalDelay: 0n });
    const hash = await chain.wallet("outsider").deployContract({
      abi: attackerAbi,
      bytecode: compiled.bytecode,
      args: [escrow],
    });
    attacker = (await chain.publicClient.waitForTransactionReceipt({ hash })).contractAddress!;
    await send(chain, escrow, "proverA", "deposit", [], ether(10));
    expect((await attackerCall("fund", [ether(1)], ether(3))).status).toBe("success");
  });

  const reentrancySelector = "0xab143c06"; // bytes4(keccak256("Reentrancy()"))

  it("a re-entered withdrawal is refused and pays once", async () => {
    expect((await attackerCall("withdraw")).status).toBe("success");
    expect(await read("calls")).toBe(1n);
    expect(await read("received")).toBe(ether(1));
    expect(await read("reentryError")).toBe(reentrancySelector);
    expect(await chain.publicClient.getBalance({ address: escrow })).toBe(ether(12));
    const [free, locked, pending] = (await chain.publicClient.readContract({
      address: escrow,
      abi: escrowAbi,
      functionName: "balanceOf",
      args: [attacker],
    })) as readonly bigint[];
    expect([free, locked, pending]).toEqual([ether(2), 0n, 0n]);
  });

  it("re-entering with a deposit is refused too", async () => {
    await attackerCall("setMode", [2]);
    expect((await attackerCall("withdraw")).status).toBe("success");
    expect(await read("reentryError")).toBe(reentrancySelector);
    expect(await chain.publicClient.getBalance({ address: escrow })).toBe(ether(12));
  });

  it("a receiver that lets the re-entry revert, or refuses payment, gets nothing and keeps its claim", async () => {
    for (const mode of [1, 3]) {
      await attackerCall("setMode", [mode]);
      const receipt = await attackerCall("withdraw", [], undefined, 500_000n);
      expect(receipt.status).toBe("reverted");
      expect(await read("received")).toBe(0n);
      expect(await chain.publicClient.getBalance({ address: escrow })).toBe(ether(13));
      const [, , pending] = (await chain.publicClient.readContract({
        address: escrow,
        abi: escrowAbi,
        functionName: "balanceOf",
        args: [attacker],
      })) as readonly bigint[];
      expect(pending).toBe(ether(1));
    }
  });
});

function encodeDeploy(settler: Address, bps: bigint) {
  return encodeDeployData({
    abi: escrowAbi,
    bytecode: escrowBytecode,
    args: [settler, 3600n, bps],
  });
}
