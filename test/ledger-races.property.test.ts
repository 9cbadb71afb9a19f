// Concurrent reservations on one prover's collateral against real Postgres, through the real
// ledger functions: however many reservations (and penalties taking from the same balance) race,
// none overdraws it, none that fits is refused, and the journal stays consistent. The model-based
// test of single movements is ledger-model.property.test.ts.
import { accounts, InsufficientBalanceError, takeUpTo, transfer } from "@prover-boost/db";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { account } from "./fixtures.ts";
import { txOptions, useLedgerDb } from "./support/ledger-db.ts";
import { blockedBy } from "./support/locks.ts";
import { expectLedgerConsistent } from "./support/market-flow.ts";

const ledger = useLedgerDb();

describe("concurrent reservations on one prover", () => {
  const prover = account(0x301).address;
  const reserveOnce = (amt: bigint) =>
    ledger.db.prisma
      .$transaction(
        (tx) =>
          transfer(tx, "reserve", accounts.available(prover), accounts.reserved(prover), amt, {
            nowMs: Date.now(),
          }),
        txOptions,
      )
      .then(
        () => ({ amt, ok: true }),
        (err: unknown) => {
          if (!(err instanceof InsufficientBalanceError)) throw err;
          return { amt, ok: false };
        },
      );

  async function deposit(amt: bigint) {
    await ledger.db.prisma.$transaction(
      (tx) =>
        transfer(tx, "deposit", accounts.deposits, accounts.available(prover), amt, {
          nowMs: Date.now(),
        }),
      txOptions,
    );
  }

  it("20 equal reservations against room for 7: exactly 7 are accepted", async () => {
    await ledger.reset();
    await deposit(700n);
    const results = await Promise.all(Array.from({ length: 20 }, () => reserveOnce(100n)));
    expect(results.filter((r) => r.ok)).toHaveLength(7);
    expect(await ledger.balanceOf(accounts.available(prover))).toBe(0n);
    expect(await ledger.balanceOf(accounts.reserved(prover))).toBe(700n);
    await expectLedgerConsistent(ledger.db.prisma);
  });

  it("random concurrent reservations never overdraw and never refuse what fits", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.bigInt(0n, 5000n),
        fc.array(fc.bigInt(1n, 1000n), { minLength: 20, maxLength: 20 }),
        async (dep, amounts) => {
          await ledger.reset();
          await deposit(dep);
          const results = await Promise.all(amounts.map(reserveOnce));
          const accepted = results.filter((r) => r.ok).reduce((s, r) => s + r.amt, 0n);
          const available = await ledger.balanceOf(accounts.available(prover));
          expect(accepted).toBeLessThanOrEqual(dep);
          expect(available).toBe(dep - accepted);
          expect(await ledger.balanceOf(accounts.reserved(prover))).toBe(accepted);
          // Available only shrank during the run, so a refused amount never fit at the end.
          for (const r of results) if (!r.ok) expect(r.amt).toBeGreaterThan(available);
          const reserves = await ledger.db.prisma.ledgerEntry.count({ where: { kind: "reserve" } });
          expect(reserves).toBe(2 * results.filter((r) => r.ok).length);
          await expectLedgerConsistent(ledger.db.prisma);
        },
      ),
      { numRuns: 10 },
    );
  });

  it("reservations racing penalties on the same collateral never overdraw it", async () => {
    await ledger.reset();
    await deposit(1000n);
    const penalties = Array.from({ length: 10 }, () =>
      ledger.db.prisma.$transaction(
        (tx) =>
          takeUpTo(tx, "penalty", accounts.available(prover), accounts.burn, 150n, {
            nowMs: Date.now(),
          }),
        txOptions,
      ),
    );
    const reservations = Array.from({ length: 10 }, () => reserveOnce(150n));
    const [taken, reserved] = await Promise.all([
      Promise.all(penalties),
      Promise.all(reservations),
    ]);
    const takenSum = taken.reduce((s, t) => s + t, 0n);
    const reservedSum = reserved.filter((r) => r.ok).reduce((s, r) => s + r.amt, 0n);
    const available = await ledger.balanceOf(accounts.available(prover));
    expect(available).toBeGreaterThanOrEqual(0n);
    expect(available + takenSum + reservedSum).toBe(1000n);
    expect(await ledger.balanceOf(accounts.burn)).toBe(takenSum);
    // Everything was used up: 20 takers of 150 each against 1000.
    expect(available).toBeLessThan(150n);
    await expectLedgerConsistent(ledger.db.prisma);
  });

  it("a penalty racing the first movement into `burn` waits for it rather than deadlock", async () => {
    await ledger.reset();
    await deposit(1000n);
    // Another transaction has just created `burn` (not committed yet) and goes on to the
    // prover's balance, the order every movement locks them in.
    let go!: () => void;
    const held = new Promise<void>((r) => {
      go = r;
    });
    let pid = 0;
    const first = ledger.db.prisma.$transaction(async (tx) => {
      const [me] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      await tx.$executeRaw`INSERT INTO "AccountBalance" (account, balance)
        VALUES (${accounts.burn}, 0)`;
      pid = me!.pid; // the penalty starts once `burn` is inserted
      await held;
      await tx.$queryRaw`SELECT account FROM "AccountBalance"
        WHERE account = ${accounts.available(prover)} FOR UPDATE`;
    }, txOptions);
    await vi.waitFor(() => expect(pid).not.toBe(0));
    const penalty = ledger.db.prisma.$transaction(
      (tx) =>
        takeUpTo(tx, "penalty", accounts.available(prover), accounts.burn, 150n, {
          nowMs: Date.now(),
        }),
      txOptions,
    );
    await vi.waitFor(async () => expect(await blockedBy(ledger.db.prisma, pid)).toBe(1), {
      timeout: 10_000,
    });
    go();
    await first;
    expect(await penalty).toBe(150n);
    expect(await ledger.balanceOf(accounts.burn)).toBe(150n);
    await expectLedgerConsistent(ledger.db.prisma);
  });
});
