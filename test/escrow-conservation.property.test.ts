// Conservation: after any sequence of escrow operations, accepted or refused, the ETH the
// contract holds equals the sum of every account's free, locked and pending balance plus the
// rewards funded and not yet settled or refunded; what left it went to withdrawers or was
// burned; and a refused call changes nothing. Runs few cases (each is a chain of real
// transactions on anvil).
import { EscrowBlockState } from "@prover-boost/escrow";
import fc from "fast-check";
import { type Address, pad, toHex, zeroAddress } from "viem";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  balanceOf,
  blockInfo,
  deployFresh,
  type EscrowChain,
  type Role,
  revertOf,
  roles,
  send,
  snapshot,
  startEscrowChain,
  type WriteName,
} from "./support/escrow-chain.ts";

let chain: EscrowChain;
beforeAll(async () => {
  chain = await startEscrowChain();
});
afterAll(async () => {
  await chain?.stop();
});

const provers = ["proverA", "proverB"] as const;
const sequencers = ["sequencer", "sequencer2"] as const;
const accounts = [...provers, ...sequencers, "settler", "outsider"].map(
  (r) => roles[r as Role].address,
);

/**
 * One step. `pick` chooses a target at run time (a block in the right state, or a share of the
 * account's free balance in percent), so most steps are accepted while some (0%, over 100%,
 * a block in the wrong state) exercise the refusals.
 */
interface Step {
  role: Role;
  fn: WriteName;
  pick: number;
  value?: bigint;
  wait?: number;
}

const pick = fc.integer({ min: 0, max: 110 });
const wei = fc.bigInt({ min: 0n, max: 5_000n });
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      role: fc.constantFrom(...provers),
      fn: fc.constant("deposit" as const),
      pick,
      value: wei,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      role: fc.constantFrom(...provers),
      fn: fc.constantFrom(
        "requestWithdrawal" as const,
        "cancelWithdrawal" as const,
        "completeWithdrawal" as const,
      ),
      pick,
      wait: fc.constantFrom(0, 100),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      role: fc.constantFrom(...sequencers),
      fn: fc.constant("fundReward" as const),
      pick,
      value: wei,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      role: fc.constant("settler" as const),
      fn: fc.constantFrom(
        "lockBond" as const,
        "lockBond" as const,
        "lockBond" as const,
        "releaseBond" as const,
        "slashBond" as const,
        "slashBond" as const,
        "settle" as const,
        "refundReward" as const,
        "penalize" as const,
      ),
      pick,
    }),
  },
);

type BlockView = Awaited<ReturnType<typeof blockInfo>> & { id: bigint };

function choose<T>(items: T[], n: number): T | undefined {
  return items.length === 0 ? undefined : items[n % items.length];
}

/** The call's arguments for the chain's current state. */
async function argsFor(escrow: Address, s: Step, opened: bigint[]): Promise<readonly unknown[]> {
  const share = async (who: Address) =>
    ((await balanceOf(chain, escrow, who)).free * BigInt(s.pick)) / 100n;
  const views: BlockView[] = await Promise.all(
    opened.map(async (id) => ({ id, ...(await blockInfo(chain, escrow, id)) })),
  );
  const funded = views.filter((b) => b.state === EscrowBlockState.Funded);
  const missing = 1_000_000n; // never funded: refused
  switch (s.fn) {
    case "requestWithdrawal":
      return [await share(roles[s.role].address)];
    case "fundReward":
      // Mostly a new block; sometimes one already funded (refused).
      return [s.pick < 90 ? BigInt(opened.length + 1) : (choose(opened, s.pick) ?? 1n)];
    case "lockBond": {
      // A prover with free funds when there is one.
      const frees = await Promise.all(
        provers.map((p) => balanceOf(chain, escrow, roles[p].address)),
      );
      const withFunds = provers.filter((_, i) => frees[i]!.free > 0n);
      const prover = roles[choose(withFunds, s.pick) ?? provers[s.pick % 2]!].address;
      const open = funded.filter((b) => b.prover === zeroAddress);
      return [choose(open, s.pick)?.id ?? missing, prover, await share(prover)];
    }
    case "releaseBond":
    case "slashBond":
      return [
        choose(
          funded.filter((b) => b.prover !== zeroAddress),
          s.pick,
        )?.id ?? missing,
      ];
    case "refundReward":
      return [choose(funded, s.pick)?.id ?? missing];
    case "penalize": {
      // Up to 110% of the free balance (capped by the contract); refs repeat, so some are refused.
      const prover = roles[provers[s.pick % 2]!].address;
      return [prover, (await share(prover)) + 1n, pad(toHex(s.pick % 5), { size: 32 })];
    }
    case "settle": {
      const b = choose(funded, s.pick);
      if (!b) return [missing, [], []];
      const first = (b.reward * BigInt(s.pick % 101)) / 100n;
      return [b.id, [roles.proverA.address, roles.proverB.address], [first, b.reward - first]];
    }
    default:
      return [];
  }
}

it("contract balance == free + locked + pending + unsettled rewards, after every step", async () => {
  const counts: Record<string, number> = {};
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 20, maxLength: 40 }), async (steps) => {
      const escrow = await deployFresh(chain, { withdrawalDelay: 60n, slashToSequencerBps: 3333n });
      const opened: bigint[] = [];
      let paidOut = 0n;
      let paidIn = 0n;
      for (const s of steps) {
        if (s.wait) {
          await chain.testClient.increaseTime({ seconds: s.wait });
          await chain.testClient.mine({ blocks: 1 });
        }
        const args = await argsFor(escrow, s, opened);
        const who = roles[s.role].address;
        const pendingBefore = (await balanceOf(chain, escrow, who)).pending;
        const before = await snapshot(chain, escrow, accounts, opened);
        const error = await revertOf(chain, escrow, s.role, s.fn, args, s.value);
        if (error === undefined) {
          await send(chain, escrow, s.role, s.fn, args, s.value);
          counts[s.fn] = (counts[s.fn] ?? 0) + 1;
          paidIn += s.value ?? 0n;
          if (s.fn === "completeWithdrawal") paidOut += pendingBefore;
          if (s.fn === "fundReward") opened.push(args[0] as bigint);
        }
        const after = await snapshot(chain, escrow, accounts, opened);
        if (error !== undefined) expect(after).toEqual(before);

        const held = after.accounts.reduce((sum, a) => sum + a.free + a.locked + a.pending, 0n);
        const unsettled = after.blocks
          .filter((b) => b.state === EscrowBlockState.Funded)
          .reduce((sum, b) => sum + b.reward, 0n);
        const bonded = after.blocks.reduce((sum, b) => sum + b.bond, 0n);
        expect(after.unsettled).toBe(unsettled);
        expect(after.eth).toBe(held + unsettled);
        expect(after.eth).toBe(paidIn - paidOut - after.burned);
        // Every locked wei backs exactly one open block's bond.
        expect(after.accounts.reduce((sum, a) => sum + a.locked, 0n)).toBe(bonded);
      }
    }),
    { numRuns: 8 },
  );
  // The runs moved money through every path, not only refusals.
  for (const fn of ["deposit", "fundReward", "lockBond", "settle", "requestWithdrawal"]) {
    expect(counts[fn] ?? 0, fn).toBeGreaterThan(0);
  }
  expect(
    (counts.slashBond ?? 0) + (counts.releaseBond ?? 0) + (counts.refundReward ?? 0),
  ).toBeGreaterThan(0);
});
