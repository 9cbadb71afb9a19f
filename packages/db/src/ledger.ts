// The double-entry ledger. A movement is a set of legs (account, signed amount) that sums to
// zero; its journal rows and the running balances are written in the caller's transaction, so
// a movement commits or rolls back with the state change it belongs to.
//
// Why the atomic step lives in Postgres: a debit of a guarded account (a prover's collateral) is
// one `INSERT .. ON CONFLICT DO UPDATE .. RETURNING balance` per leg; the row lock it takes
// serializes concurrent movements on that account across every relay process, and a negative
// result aborts the whole transaction. No read-then-write window exists, whatever the number of
// relay processes, and the collateral check commits together with the bid that needed it.

import { randomUUID } from "node:crypto";
import { ProverBoostError } from "@prover-boost/core";
import type { PrismaClient } from "./generated/client.ts";

export type Tx = Omit<
  PrismaClient,
  "$connect" | "$disconnect" | "$on" | "$transaction" | "$extends"
>;

export type MovementKind =
  | "deposit"
  | "reserve"
  | "release"
  | "lock"
  | "unlock"
  | "slash"
  | "burn"
  | "penalty"
  | "payout"
  /** COLLATERAL=chain: a reward funded into (or refunded from) the escrow. */
  | "reward"
  /** COLLATERAL=chain: collateral asked back, given back, or paid out by the escrow. */
  | "withdrawal";

export interface Leg {
  account: string;
  amount: bigint;
}

export const accounts = {
  deposits: "external:deposits",
  rewards: "external:rewards",
  burn: "burn",
  available: (prover: string) => `prover:${prover.toLowerCase()}:available`,
  reserved: (prover: string) => `prover:${prover.toLowerCase()}:reserved`,
  locked: (prover: string) => `prover:${prover.toLowerCase()}:locked`,
  earnings: (address: string) => `earnings:${address.toLowerCase()}`,
  /** COLLATERAL=chain: collateral asked back on the L1, paid out after the escrow's delay. */
  withdrawing: (prover: string) => `prover:${prover.toLowerCase()}:withdrawing`,
  /** COLLATERAL=chain: a block's reward as funded into the escrow by its sequencer. */
  reward: (blockNumber: number | bigint) => `escrow:reward:${blockNumber}`,
  /**
   * COLLATERAL=chain: what the L1 took back from `account` that the ledger no longer held (a
   * reorged deposit already spent, a withdrawal the ledger cannot explain): negative, the
   * market's loss, until the prover's next deposits repay it. External, so it may go negative.
   */
  shortfall: (account: string) => `external:shortfall:${account}`,
};

/** Accounts that may never go negative (external sources may). */
export const isGuarded = (account: string): boolean => !account.startsWith("external:");

export class InsufficientBalanceError extends ProverBoostError {
  override readonly name = "InsufficientBalanceError";
  constructor(
    readonly account: string,
    readonly shortBy: bigint,
  ) {
    super("INSUFFICIENT_BALANCE", `account ${account} would go negative by ${shortBy}`);
  }
}

export interface MovementInput {
  kind: MovementKind;
  legs: Leg[];
  blockNumber?: number | null;
  ref?: string | null;
  nowMs: number;
  movementId?: string;
}

/**
 * Applies one balanced movement inside `tx` in a single round trip (the SQL function
 * pb_apply_movement, defined by a migration); throws InsufficientBalanceError on overdraft.
 */
export async function applyMovement(tx: Tx, input: MovementInput): Promise<string> {
  const { movementId, ordered } = normalize(input);
  if (ordered.length === 0) return movementId;
  await mapOverdraft(
    tx.$executeRaw`SELECT pb_apply_movement(
      ${movementId}, ${input.kind},
      ${ordered.map(([a]) => a)}::text[], ${ordered.map(([, m]) => m.toString())}::numeric[],
      ${input.blockNumber ?? null}::integer, ${input.ref ?? null}::text, ${BigInt(input.nowMs)}::bigint)`,
  );
  return movementId;
}

/**
 * Applies many balanced movements inside `tx` in one round trip, one pb_apply_movement each, in
 * the order given (a caller that touches several provers' balances orders them by account, as
 * every multi-prover ledger writer does). For work that scales with the market (an auction's
 * close releasing every losing bid); all or nothing, like the caller's transaction. Returns the
 * movement ids in the inputs' order.
 */
export async function applyMovements(tx: Tx, inputs: MovementInput[]): Promise<string[]> {
  const normalized = inputs.map(normalize);
  const rows = normalized.flatMap(({ movementId, ordered }, i) => {
    if (ordered.length === 0) return [];
    const m = inputs[i]!;
    return [
      [
        movementId,
        m.kind,
        ordered.map(([a]) => a),
        ordered.map(([, amount]) => amount.toString()),
        m.blockNumber ?? null,
        m.ref ?? null,
        m.nowMs,
      ],
    ];
  });
  // Volatile calls in the select list run after the sort, so in the inputs' order.
  if (rows.length > 0) {
    await mapOverdraft(
      tx.$queryRaw`SELECT pb_apply_movement(m->>0, m->>1,
        ARRAY(SELECT jsonb_array_elements_text(m->2)),
        ARRAY(SELECT a::numeric FROM jsonb_array_elements_text(m->3) AS a),
        (m->>4)::integer, m->>5, (m->>6)::bigint)::text AS applied
      FROM jsonb_array_elements(${JSON.stringify(rows)}::jsonb) WITH ORDINALITY AS t(m, o)
      ORDER BY o`,
    );
  }
  return normalized.map((n) => n.movementId);
}

/**
 * A movement's legs with zeros left out, merged per account and in account order (rows are
 * locked in a fixed order so concurrent movements cannot deadlock); throws if they do not sum to
 * zero.
 */
function normalize(input: MovementInput): { movementId: string; ordered: [string, bigint][] } {
  const legs = input.legs.filter((l) => l.amount !== 0n);
  const sum = legs.reduce((s, l) => s + l.amount, 0n);
  if (sum !== 0n) throw new Error(`unbalanced ${input.kind} movement: legs sum to ${sum}`);
  const merged = new Map<string, bigint>();
  for (const l of legs) merged.set(l.account, (merged.get(l.account) ?? 0n) + l.amount);
  const ordered = [...merged]
    .filter(([, amount]) => amount !== 0n)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { movementId: input.movementId ?? randomUUID(), ordered };
}

/** pb_apply_movement's overdraft as InsufficientBalanceError; any other error as it is. */
async function mapOverdraft(write: Promise<unknown>): Promise<void> {
  try {
    await write;
  } catch (err) {
    const m = /pb_insufficient_balance short=(\d+) account=([^\s`"']+)/.exec(
      String((err as Error).message),
    );
    if (m) throw new InsufficientBalanceError(m[2]!, BigInt(m[1]!));
    throw err;
  }
}

/** A simple two-leg transfer. */
export function transfer(
  tx: Tx,
  kind: MovementKind,
  from: string,
  to: string,
  amount: bigint,
  meta: { nowMs: number; blockNumber?: number | null; ref?: string | null },
): Promise<string> {
  if (amount < 0n) throw new Error("transfer amount must be non-negative");
  return applyMovement(tx, {
    kind,
    legs: [
      { account: from, amount: -amount },
      { account: to, amount },
    ],
    ...meta,
  });
}

export async function balanceOf(db: Tx, account: string): Promise<bigint> {
  const row = await db.accountBalance.findUnique({ where: { account } });
  return row ? BigInt(row.balance.toFixed()) : 0n;
}

export async function balances(db: Tx, list: string[]): Promise<Map<string, bigint>> {
  const rows = await db.accountBalance.findMany({ where: { account: { in: list } } });
  const out = new Map(list.map((a) => [a, 0n]));
  for (const r of rows) out.set(r.account, BigInt(r.balance.toFixed()));
  return out;
}

export interface CollateralView {
  deposited: bigint;
  reserved: bigint;
  locked: bigint;
  slashed: bigint;
  available: bigint;
}

/** A prover's collateral: available = deposited - reserved - locked - slashed (- penalties). */
export async function collateralOf(db: Tx, prover: string): Promise<CollateralView> {
  const b = await balances(db, [
    accounts.available(prover),
    accounts.reserved(prover),
    accounts.locked(prover),
  ]);
  const sums = await db.ledgerEntry.groupBy({
    by: ["kind"],
    where: {
      account: { in: [accounts.available(prover), accounts.locked(prover)] },
      kind: { in: ["deposit", "slash", "penalty"] },
    },
    _sum: { amount: true },
  });
  const byKind = new Map(sums.map((s) => [s.kind, BigInt(s._sum.amount?.toFixed() ?? "0")]));
  return {
    deposited: byKind.get("deposit") ?? 0n,
    reserved: b.get(accounts.reserved(prover))!,
    locked: b.get(accounts.locked(prover))!,
    slashed: -((byKind.get("slash") ?? 0n) + (byKind.get("penalty") ?? 0n)),
    available: b.get(accounts.available(prover))!,
  };
}

/**
 * Moves up to `max` from a guarded account to `to` (never overdrawing it), after locking both
 * balance rows in account order (the order pb_apply_movement locks them in: locking `from` alone
 * first deadlocked with a movement holding `to`, as `burn` sorts before every prover account).
 * Returns the amount moved. Used for penalties that take what is there. `whenShort`, if given,
 * runs (with both rows locked) when `from` holds less than `max`, and may add to it first.
 */
export async function takeUpTo(
  tx: Tx,
  kind: MovementKind,
  from: string,
  to: string,
  max: bigint,
  meta: { nowMs: number; blockNumber?: number | null; ref?: string | null },
  whenShort?: () => Promise<unknown>,
): Promise<bigint> {
  if (max <= 0n) return 0n;
  // Both rows exist before they are locked: a row this statement's snapshot cannot see yet (its
  // first movement committing meanwhile) would be left unlocked, then taken by the movement
  // after `from`, out of order (`burn`'s first penalties deadlocked so). A zero balance journals
  // nothing and agrees with the journal.
  await tx.$executeRaw`
    INSERT INTO "AccountBalance" (account, balance)
    SELECT a, 0 FROM unnest(ARRAY[${from}, ${to}]::text[]) AS a ORDER BY a
    ON CONFLICT (account) DO NOTHING`;
  const rows = await tx.$queryRaw<{ account: string; balance: string }[]>`
    SELECT account, balance::text AS balance FROM "AccountBalance"
    WHERE account IN (${from}, ${to}) ORDER BY account FOR UPDATE`;
  const row = rows.find((r) => r.account === from);
  let available = row ? BigInt(row.balance) : 0n;
  if (available < max && whenShort) {
    await whenShort();
    available = await balanceOf(tx, from);
  }
  const amount = available < max ? available : max;
  if (amount > 0n) await transfer(tx, kind, from, to, amount, meta);
  return amount;
}
