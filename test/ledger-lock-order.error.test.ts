// A penalty taken from a prover's balance (takeUpTo: the relay's withholding and invalid-proof
// charges) against a movement that touches the same two accounts at once (the escrow index
// booking a Penalized event: burn and the prover's free collateral). Both must lock the balance
// rows in one order (the account order every ledger movement uses), so neither deadlocks: the
// penalty, held up behind the other, goes through once it commits. On real Postgres.
import {
  accounts,
  applyMovement,
  chargePenalty,
  type Tx,
  takeUpTo,
  transfer,
} from "@prover-boost/db";
import { describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually } from "./harness.ts";
import { txOptions, useLedgerDb } from "./support/ledger-db.ts";
import { blockedBy } from "./support/locks.ts";

const ledger = useLedgerDb();

/** A prover with 1000 wei deposited and 1 already burned (a penalty the index may take back). */
async function fundedProver(seed: number): Promise<string> {
  const prover = account(seed).address;
  const nowMs = Date.now();
  await ledger.db.prisma.$transaction((tx) =>
    transfer(tx, "deposit", accounts.deposits, accounts.available(prover), 1000n, { nowMs }),
  );
  await ledger.db.prisma.$transaction((tx) =>
    transfer(tx, "penalty", accounts.available(prover), accounts.burn, 1n, { nowMs }),
  );
  return prover;
}

/**
 * Another transaction takes its first locks (`hold`), then the penalty starts; once the penalty
 * waits on that transaction, the other goes on (`then`, taking its remaining locks) and commits.
 * Resolves with what the penalty took (a deadlock rejects).
 */
async function penaltyBehind(
  hold: (tx: Tx) => Promise<unknown>,
  then: (tx: Tx) => Promise<unknown>,
  penalty: (tx: Tx) => Promise<bigint>,
): Promise<bigint> {
  let go!: () => void;
  const started = new Promise<void>((r) => {
    go = r;
  });
  let holder = 0;
  const other = ledger.db.prisma.$transaction(async (tx) => {
    await hold(tx);
    holder = (await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`)[0]!.pid;
    await started;
    await then(tx);
  }, txOptions);
  await eventually(async () => holder > 0);
  const taken = ledger.db.prisma.$transaction(penalty, txOptions);
  await eventually(async () => (await blockedBy(ledger.db.prisma, holder)) > 0);
  go();
  await other;
  return taken;
}

const lockRow = (tx: Tx, account: string) =>
  tx.$queryRaw`SELECT account FROM "AccountBalance" WHERE account = ${account} FOR UPDATE`;

describe("a penalty taken while another movement holds burn", () => {
  it("waits its turn in account order instead of deadlocking", async () => {
    const prover = await fundedProver(0x10c);
    const nowMs = Date.now();
    // The other movement: holds burn first (as pb_apply_movement's account order does), then
    // moves between burn and the prover's available.
    const taken = await penaltyBehind(
      (tx) => lockRow(tx, accounts.burn),
      (tx) =>
        applyMovement(tx, {
          kind: "penalty",
          legs: [
            { account: accounts.burn, amount: -1n },
            { account: accounts.available(prover), amount: 1n },
          ],
          nowMs,
        }),
      (tx) => takeUpTo(tx, "penalty", accounts.available(prover), accounts.burn, 7n, { nowMs }),
    );
    expect(taken).toBe(7n);
    expect(await ledger.balanceOf(accounts.available(prover))).toBe(1000n - 7n);
    expect(await ledger.balanceOf(accounts.burn)).toBe(7n);
  });
});

describe("a penalty charged while a withdrawal is being booked for the same prover", () => {
  it("waits for the prover's market lock instead of deadlocking on its rows and burn", async () => {
    const prover = await fundedProver(0x10e);
    const nowMs = Date.now();
    // The escrow index booking a withdrawal (takeFromFree): the prover's market lock, its free
    // collateral's row, and later burn (taking back an unsent penalty's burn).
    const taken = await penaltyBehind(
      async (tx) => {
        await tx.$queryRaw`SELECT pb_lock_prover(${prover})::text AS locked`;
        await lockRow(tx, accounts.available(prover));
      },
      (tx) =>
        applyMovement(tx, {
          kind: "withdrawal",
          legs: [
            { account: accounts.burn, amount: -1n },
            { account: accounts.available(prover), amount: -9n },
            { account: accounts.withdrawing(prover), amount: 10n },
          ],
          nowMs,
        }),
      (tx) =>
        chargePenalty(tx, {
          kind: "withholding",
          blockNumber: null,
          operator: prover,
          maxWei: 7n,
          nowMs,
        }),
    );
    expect(taken).toBe(7n);
    expect(await ledger.balanceOf(accounts.available(prover))).toBe(1000n - 1n - 9n - 7n);
  });
});

describe("a movement called directly in SQL", () => {
  it("refuses a leg that is not a whole number of wei, before it could be rounded", async () => {
    const prover = account(0x10d).address;
    const call = (amounts: string) =>
      ledger.db.sql.exec(
        `SELECT pb_apply_movement('m-${amounts.length}-${Date.now()}', 'deposit',
          ARRAY['external:deposits', '${accounts.available(prover)}', 'burn'],
          ARRAY[${amounts}]::numeric[], NULL, NULL, 0)`,
      );
    // Legs summing to zero, stored as 1, 1 and -1 had they been let through.
    await expect(call("-1, 0.5, 0.5")).rejects.toThrow(/amounts must be whole wei/);
    await expect(call("-1, 1, NULL")).rejects.toThrow(/amounts must be whole wei/);
    expect(await ledger.balanceOf(accounts.available(prover))).toBe(0n);
    await call("-2, 1, 1");
    expect(await ledger.balanceOf(accounts.available(prover))).toBe(1n);
  });
});
