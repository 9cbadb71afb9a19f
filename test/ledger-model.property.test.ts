// Property-based test of the double-entry ledger against real Postgres. Random sequences of the
// market's movements (deposit, reserve, release, lock, unlock, slash, penalty, payout, and
// two-movement transactions whose second step may overdraw) go through the real ledger
// functions inside Prisma transactions. A plain in-memory model predicts every balance and
// whether each transaction must be refused; after every step the journal and the balances are
// checked against the model and against the ledger's invariants. Concurrent reservations are in
// ledger-races.property.test.ts.
import {
  accounts,
  applyMovement,
  InsufficientBalanceError,
  type Tx,
  takeUpTo,
  transfer,
} from "@prover-boost/db";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { txOptions, useLedgerDb } from "./support/ledger-db.ts";
import { expectLedgerConsistent } from "./support/market-flow.ts";

const ledger = useLedgerDb();

// Addresses: provers are given in any casing; accounts must not depend on it.
const provers = [account(0x301), account(0x302), account(0x303)].map((a) => a.address);
const sequencers = [account(0x401), account(0x402)].map((a) => a.address);
const recipients = [...provers, ...sequencers];
const cased = (addr: string, casing: number) =>
  casing === 0 ? addr : casing === 1 ? addr.toLowerCase() : `0x${addr.slice(2).toUpperCase()}`;

// The model's account names, straight from docs/economics.md (not from the code under test).
const A = {
  deposits: "external:deposits",
  rewards: "external:rewards",
  burn: "burn",
  available: (p: string) => `prover:${p.toLowerCase()}:available`,
  reserved: (p: string) => `prover:${p.toLowerCase()}:reserved`,
  locked: (p: string) => `prover:${p.toLowerCase()}:locked`,
  earnings: (a: string) => `earnings:${a.toLowerCase()}`,
};

type Legs = [string, bigint][];
type Op =
  | { k: "deposit" | "reserve" | "release" | "lock" | "unlock"; p: number; c: number; amt: bigint }
  | { k: "slash"; p: number; c: number; amt: bigint; seq: number; bps: number }
  | { k: "penalty"; p: number; c: number; amt: bigint }
  | { k: "payout"; parts: { to: number; amt: bigint }[] }
  | { k: "rebid"; p: number; c: number; old: bigint; amt: bigint }
  | { k: "depositAndReserve"; p: number; c: number; dep: bigint; amt: bigint };

/**
 * An amount as generated: a fixed value, or the balance of the account the movement draws from
 * plus -1, 0 or +1 (resolved against the model when the step runs), so that the exact edge of
 * every guarded balance is hit often.
 */
type Amount = bigint | { edge: -1 | 0 | 1 };
type Spec =
  | { k: "deposit" | "reserve" | "release" | "lock" | "unlock"; p: number; c: number; amt: Amount }
  | { k: "slash"; p: number; c: number; amt: Amount; seq: number; bps: number }
  | { k: "penalty"; p: number; c: number; amt: Amount }
  | { k: "payout"; parts: { to: number; amt: bigint }[] }
  | { k: "rebid"; p: number; c: number; old: Amount; amt: Amount }
  | { k: "depositAndReserve"; p: number; c: number; dep: bigint; amt: Amount };

const fixed = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt(0n, 3000n) },
  { weight: 1, arbitrary: fc.bigInt(0n, 10n ** 40n) },
);
const amount: fc.Arbitrary<Amount> = fc.oneof(
  { weight: 3, arbitrary: fixed },
  {
    weight: 2,
    arbitrary: fc.record({ edge: fc.constantFrom(-1 as const, 0 as const, 1 as const) }),
  },
);
const who = { p: fc.nat(provers.length - 1), c: fc.nat(2) };
const specArb: fc.Arbitrary<Spec> = fc.oneof(
  fc.record({ k: fc.constant("deposit" as const), ...who, amt: amount }),
  fc.record({ k: fc.constant("reserve" as const), ...who, amt: amount }),
  fc.record({ k: fc.constant("release" as const), ...who, amt: amount }),
  fc.record({ k: fc.constant("lock" as const), ...who, amt: amount }),
  fc.record({ k: fc.constant("unlock" as const), ...who, amt: amount }),
  fc.record({
    k: fc.constant("slash" as const),
    ...who,
    amt: amount,
    seq: fc.nat(sequencers.length - 1),
    bps: fc.oneof(fc.constantFrom(0, 5000, 10_000), fc.integer({ min: 0, max: 10_000 })),
  }),
  fc.record({ k: fc.constant("penalty" as const), ...who, amt: amount }),
  fc.record({
    k: fc.constant("payout" as const),
    parts: fc.array(fc.record({ to: fc.nat(recipients.length - 1), amt: fixed }), {
      minLength: 1,
      maxLength: 4,
    }),
  }),
  fc.record({ k: fc.constant("rebid" as const), ...who, old: amount, amt: amount }),
  fc.record({ k: fc.constant("depositAndReserve" as const), ...who, dep: fixed, amt: amount }),
);

/** Fixes a spec's amounts against the model's balances (the source account of each movement). */
function concretize(spec: Spec, model: Map<string, bigint>): Op {
  const at = (amt: Amount, source: string, plus = 0n): bigint => {
    if (typeof amt === "bigint") return amt;
    const v = (model.get(source) ?? 0n) + plus + BigInt(amt.edge);
    return v < 0n ? 0n : v;
  };
  if (spec.k === "payout") return spec;
  const p = provers[spec.p]!;
  switch (spec.k) {
    case "deposit":
    case "reserve":
    case "penalty":
      return { ...spec, amt: at(spec.amt, A.available(p)) };
    case "release":
    case "lock":
      return { ...spec, amt: at(spec.amt, A.reserved(p)) };
    case "unlock":
    case "slash":
      return { ...spec, amt: at(spec.amt, A.locked(p)) };
    case "rebid": {
      const old = at(spec.old, A.reserved(p));
      return { ...spec, old, amt: at(spec.amt, A.available(p), old) };
    }
    case "depositAndReserve":
      return { ...spec, amt: at(spec.amt, A.available(p), spec.dep) };
  }
}

/** The movements an op makes, as the model sees them (legs per movement, in order). */
function modelMovements(op: Op, model: Map<string, bigint>): Legs[] {
  const move = (from: string, to: string, amt: bigint): Legs => [
    [from, -amt],
    [to, amt],
  ];
  switch (op.k) {
    case "deposit":
      return [move(A.deposits, A.available(provers[op.p]!), op.amt)];
    case "reserve":
      return [move(A.available(provers[op.p]!), A.reserved(provers[op.p]!), op.amt)];
    case "release":
      return [move(A.reserved(provers[op.p]!), A.available(provers[op.p]!), op.amt)];
    case "lock":
      return [move(A.reserved(provers[op.p]!), A.locked(provers[op.p]!), op.amt)];
    case "unlock":
      return [move(A.locked(provers[op.p]!), A.available(provers[op.p]!), op.amt)];
    case "slash": {
      const toSeq = (op.amt * BigInt(op.bps)) / 10_000n;
      return [
        [
          [A.locked(provers[op.p]!), -op.amt],
          [A.earnings(sequencers[op.seq]!), toSeq],
          [A.burn, op.amt - toSeq],
        ],
      ];
    }
    case "penalty": {
      const avail = model.get(A.available(provers[op.p]!)) ?? 0n;
      const taken = avail < op.amt ? avail : op.amt;
      return [move(A.available(provers[op.p]!), A.burn, taken)];
    }
    case "payout": {
      const total = op.parts.reduce((s, x) => s + x.amt, 0n);
      return [
        [
          [A.rewards, -total],
          ...op.parts.map((x): [string, bigint] => [A.earnings(recipients[x.to]!), x.amt]),
        ],
      ];
    }
    case "rebid": {
      const p = provers[op.p]!;
      return [
        move(A.reserved(p), A.available(p), op.old),
        move(A.available(p), A.reserved(p), op.amt),
      ];
    }
    case "depositAndReserve": {
      const p = provers[op.p]!;
      return [
        move(A.deposits, A.available(p), op.dep),
        move(A.available(p), A.reserved(p), op.amt),
      ];
    }
  }
}

/** Applies the op's movements to a copy of the model; null when one would overdraw. */
function modelApply(op: Op, model: Map<string, bigint>): Map<string, bigint> | null {
  const next = new Map(model);
  for (const legs of modelMovements(op, next)) {
    for (const [acct, amt] of legs) next.set(acct, (next.get(acct) ?? 0n) + amt);
    for (const [acct] of legs) {
      if (!acct.startsWith("external:") && next.get(acct)! < 0n) return null;
    }
  }
  return next;
}

/** Runs the op through the real ledger functions, in one transaction. */
async function realApply(tx: Tx, op: Op): Promise<void> {
  const meta = { nowMs: Date.now(), blockNumber: 1, ref: op.k };
  const p = "p" in op ? cased(provers[op.p]!, op.c) : "";
  switch (op.k) {
    case "deposit":
      await transfer(tx, "deposit", accounts.deposits, accounts.available(p), op.amt, meta);
      return;
    case "reserve":
      await transfer(tx, "reserve", accounts.available(p), accounts.reserved(p), op.amt, meta);
      return;
    case "release":
      await transfer(tx, "release", accounts.reserved(p), accounts.available(p), op.amt, meta);
      return;
    case "lock":
      await transfer(tx, "lock", accounts.reserved(p), accounts.locked(p), op.amt, meta);
      return;
    case "unlock":
      await transfer(tx, "unlock", accounts.locked(p), accounts.available(p), op.amt, meta);
      return;
    case "slash": {
      const toSeq = (op.amt * BigInt(op.bps)) / 10_000n;
      await applyMovement(tx, {
        kind: "slash",
        legs: [
          { account: accounts.locked(p), amount: -op.amt },
          { account: accounts.earnings(sequencers[op.seq]!), amount: toSeq },
          { account: accounts.burn, amount: op.amt - toSeq },
        ],
        ...meta,
      });
      return;
    }
    case "penalty":
      await takeUpTo(tx, "penalty", accounts.available(p), accounts.burn, op.amt, meta);
      return;
    case "payout":
      await applyMovement(tx, {
        kind: "payout",
        legs: [
          { account: accounts.rewards, amount: -op.parts.reduce((s, x) => s + x.amt, 0n) },
          ...op.parts.map((x) => ({
            account: accounts.earnings(recipients[x.to]!),
            amount: x.amt,
          })),
        ],
        ...meta,
      });
      return;
    case "rebid":
      await transfer(tx, "release", accounts.reserved(p), accounts.available(p), op.old, meta);
      await transfer(tx, "reserve", accounts.available(p), accounts.reserved(p), op.amt, meta);
      return;
    case "depositAndReserve":
      await transfer(tx, "deposit", accounts.deposits, accounts.available(p), op.dep, meta);
      await transfer(tx, "reserve", accounts.available(p), accounts.reserved(p), op.amt, meta);
      return;
  }
}

async function dbBalances(): Promise<Map<string, bigint>> {
  const rows = await ledger.db.prisma.accountBalance.findMany();
  return new Map(
    rows.map((r) => [r.account, BigInt(r.balance.toFixed())] as const).filter(([, b]) => b !== 0n),
  );
}
const nonZero = (m: Map<string, bigint>) => new Map([...m].filter(([, b]) => b !== 0n));
const sortedEntries = (m: Map<string, bigint>) =>
  [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** deposits + rewards paid - burned == what the provers and earners hold. */
function expectConservation(balances: Map<string, bigint>) {
  let held = 0n;
  for (const [acct, b] of balances) {
    if (!acct.startsWith("external:") && acct !== "burn") held += b;
  }
  const deposits = -(balances.get("external:deposits") ?? 0n);
  const rewards = -(balances.get("external:rewards") ?? 0n);
  const burned = balances.get("burn") ?? 0n;
  expect(held).toBe(deposits + rewards - burned);
}

async function checkStep(model: Map<string, bigint>) {
  const balances = await dbBalances();
  expect(sortedEntries(balances)).toEqual(sortedEntries(nonZero(model)));
  expectConservation(balances);
  await expectLedgerConsistent(ledger.db.prisma);
}

describe("ledger invariants over random operation sequences", () => {
  it("every step matches the model and keeps the ledger balanced", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(specArb, { minLength: 1, maxLength: 14 }), async (specs) => {
        await ledger.reset();
        let model = new Map<string, bigint>();
        for (const spec of specs) {
          const op = concretize(spec, model);
          const expected = modelApply(op, model);
          const entriesBefore = await ledger.db.prisma.ledgerEntry.count();
          let refused: unknown = null;
          try {
            await ledger.db.prisma.$transaction((tx) => realApply(tx, op), txOptions);
          } catch (err) {
            refused = err;
          }
          if (expected === null) {
            // Refused as an overdraft, and the whole transaction changed nothing.
            expect(refused, JSON.stringify(op, jsonBig)).toBeInstanceOf(InsufficientBalanceError);
            expect(await ledger.db.prisma.ledgerEntry.count()).toBe(entriesBefore);
          } else {
            expect(refused).toBeNull();
            model = expected;
          }
          await checkStep(model);
        }
      }),
      { numRuns: 150 },
    );
  });
});

function jsonBig(_k: string, v: unknown) {
  return typeof v === "bigint" ? v.toString() : v;
}
