// What each escrow event does to the double-entry ledger (COLLATERAL=chain).
//
// The escrow keeps, per address, `free`, `locked` and `pending` wei. The ledger mirrors them:
//   free    = prover:<a>:available + prover:<a>:reserved + earnings:<a>
//   locked  = prover:<a>:locked
//   pending = prover:<a>:withdrawing
// and a block's funded reward sits in escrow:reward:<n> until the block is paid.
//
// Only money that enters or leaves the escrow by its users' own hand is booked by the indexer:
// deposits, withdrawals and funded rewards. Bond locks, releases, slashes and settlements are the
// aggregator's decisions: the aggregator books them in the ledger when it makes them, and the
// settler sends the matching transaction; their events are indexed (for the record and for
// reconciliation) but move nothing. So are penalties (the relay burns up to the operator's free
// collateral in the ledger and the settler sends `penalize` for that amount), with one
// exception: when the escrow found less free than the ledger took (a withdrawal asked on chain
// first), the `Penalized` event's shortfall (requested - burned) goes back from `burn` to the
// prover's free collateral, so both hold what the escrow actually burned. A withdrawal booked
// while a penalty the ledger burned is not yet applied on chain may take that burn back (the
// escrow still had it free); the penalty's Penalized event then gives back only the rest, or,
// if the escrow burned more than the ledger still holds burned for it (a deposit or reward came
// in after that withdrawal), burns the excess from the prover's free collateral in the ledger too.
import {
  accounts,
  applyMovement,
  balanceOf,
  cancelLiveBids,
  InsufficientBalanceError,
  type Leg,
  type MovementKind,
  type Tx,
} from "@prover-boost/db";
import { getAddress } from "viem";
import { penaltyRef } from "./penalty-ref.ts";

export interface EscrowEvent {
  eventName: string;
  args: Record<string, unknown>;
}

export interface MovementMeta {
  movementId: string;
  ref: string;
  nowMs: number;
}

const addr = (v: unknown) => getAddress(String(v));
const wei = (v: unknown) => BigInt(v as bigint);

/**
 * Applies the movement of one newly seen escrow event in `tx`; returns its id, or null when the
 * event moves nothing in the ledger.
 */
export async function applyEscrowEvent(
  tx: Tx,
  event: EscrowEvent,
  meta: MovementMeta,
): Promise<string | null> {
  const a = event.args;
  const base = { movementId: meta.movementId, ref: meta.ref, nowMs: meta.nowMs };
  switch (event.eventName) {
    case "Deposited": {
      const account = addr(a.account);
      await tx.prover.upsert({
        where: { address: account },
        create: { address: account, createdAt: BigInt(meta.nowMs) },
        update: {},
      });
      return applyMovement(tx, {
        kind: "deposit",
        legs: [
          { account: accounts.deposits, amount: -wei(a.amount) },
          { account: accounts.available(account), amount: wei(a.amount) },
        ],
        ...base,
      });
    }
    case "WithdrawalRequested": {
      const account = addr(a.account);
      const legs = await takeFromFree(tx, account, wei(a.amount), meta.nowMs);
      return applyMovement(tx, {
        kind: "withdrawal",
        legs: [...legs, { account: accounts.withdrawing(account), amount: wei(a.amount) }],
        ...base,
      });
    }
    case "WithdrawalCancelled": {
      const account = addr(a.account);
      return applyMovement(tx, {
        kind: "withdrawal",
        legs: [
          { account: accounts.withdrawing(account), amount: -wei(a.amount) },
          { account: accounts.available(account), amount: wei(a.amount) },
        ],
        ...base,
      });
    }
    case "Withdrawn": {
      const account = addr(a.account);
      return applyMovement(tx, {
        kind: "withdrawal",
        legs: [
          { account: accounts.withdrawing(account), amount: -wei(a.amount) },
          { account: accounts.deposits, amount: wei(a.amount) },
        ],
        ...base,
      });
    }
    case "RewardFunded":
      return applyMovement(tx, {
        kind: "reward",
        legs: [
          { account: accounts.rewards, amount: -wei(a.amount) },
          { account: accounts.reward(wei(a.blockNumber)), amount: wei(a.amount) },
        ],
        blockNumber: Number(a.blockNumber),
        ...base,
      });
    case "RewardRefunded":
      return applyMovement(tx, {
        kind: "reward",
        legs: [
          { account: accounts.reward(wei(a.blockNumber)), amount: -wei(a.amount) },
          { account: accounts.earnings(addr(a.sequencer)), amount: wei(a.amount) },
        ],
        blockNumber: Number(a.blockNumber),
        ...base,
      });
    case "Penalized": {
      // The ledger burned `requested` when it charged the penalty, less what a withdrawal booked
      // since took back from that burn (`undone`); the escrow burned `burned`. The difference
      // goes back to the prover's free collateral, or, when the escrow burned more (collateral
      // deposited or credited after that withdrawal), is taken from it: both burn the same.
      const undone = await penaltyUndone(tx, String(a.ref));
      const short = wei(a.requested) - undone - wei(a.burned);
      if (short === 0n) return null;
      const prover = addr(a.prover);
      if (short > 0n) {
        return applyMovement(tx, {
          kind: "penalty",
          legs: [
            { account: accounts.burn, amount: -short },
            { account: accounts.available(prover), amount: short },
          ],
          ...base,
        });
      }
      const legs = await takeFromFree(tx, prover, -short, meta.nowMs);
      return applyMovement(tx, {
        kind: "penalty",
        legs: [...legs, { account: accounts.burn, amount: -short }],
        ...base,
      });
    }
    default:
      return null;
  }
}

/**
 * The legs that take `amount` out of an address's free escrow balance as the ledger sees it:
 * earnings first, then free collateral. If live bids hold the rest (the L1 does not know about
 * reservations), those bids are cancelled and their reservations released first; what is still
 * missing can only be a bond the aggregator locked before the L1 saw the withdrawal (its lock
 * transaction will then revert and be reported), so it is taken from the locked bonds.
 */
async function takeFromFree(tx: Tx, account: string, amount: bigint, nowMs: number) {
  // The prover's bid lock before its balance rows, in the order bid writes take them (no deadlock).
  await lockProver(tx, account);
  const legs: Leg[] = [];
  let left = amount;
  const take = (acct: string, have: bigint) => {
    const n = have < left ? have : left;
    if (n > 0n) legs.push({ account: acct, amount: -n });
    left -= n;
  };
  take(accounts.earnings(account), await lockedBalance(tx, accounts.earnings(account)));
  if (left > 0n && (await lockedBalance(tx, accounts.available(account))) < left) {
    await cancelLiveBids(tx, account, nowMs);
  }
  take(accounts.available(account), await lockedBalance(tx, accounts.available(account)));
  if (left > 0n) legs.push(...(await undoUnsentPenalties(tx, account, left, (n) => (left -= n))));
  const fromBonds = left;
  take(accounts.locked(account), await lockedBalance(tx, accounts.locked(account)));
  if (left > 0n) throw new InsufficientBalanceError(accounts.available(account), left);
  if (fromBonds > 0n) await shrinkBonds(tx, account, fromBonds);
  return legs;
}

/**
 * The escrow let a withdrawal have collateral the ledger had already burned for a penalty whose
 * `penalize` it had not applied yet (so on chain that collateral was still free, and the penalty
 * will burn less). Up to `amount` of those penalties' burns, oldest first, goes to the withdrawal
 * instead: legs from `burn`, and each penalty's settlement remembers how much was undone, so its
 * `Penalized` event gives back only the rest of its shortfall.
 */
async function undoUnsentPenalties(
  tx: Tx,
  account: string,
  amount: bigint,
  took: (n: bigint) => void,
): Promise<Leg[]> {
  const rows = await tx.$queryRaw<{ id: bigint; args: Record<string, unknown> }[]>`
    SELECT id, args FROM "Settlement"
    WHERE kind = 'penalty' AND status <> 'reverted' AND lower(args->>'prover') = lower(${account})
    ORDER BY id FOR UPDATE`;
  let left = amount;
  let total = 0n;
  for (const r of rows) {
    if (left === 0n) break;
    // Applied on chain before this withdrawal: its event is indexed already (logs are booked in
    // chain order). The settler may have recorded it confirmed meanwhile; that does not count.
    const applied = await tx.chainLog.count({
      where: {
        event: "Penalized",
        removed: false,
        args: { path: ["ref"], equals: penaltyRef(String(r.args.penaltyId)) },
      },
    });
    if (applied > 0) continue;
    const open = BigInt(String(r.args.amount)) - BigInt(String(r.args.undone ?? "0"));
    const n = open < left ? open : left;
    if (n <= 0n) continue;
    await tx.settlement.update({
      where: { id: r.id },
      data: { args: { ...r.args, undone: (BigInt(String(r.args.undone ?? "0")) + n).toString() } },
    });
    left -= n;
    total += n;
  }
  if (total === 0n) return [];
  took(total);
  return [{ account: accounts.burn, amount: -total }];
}

/** Wei of the penalty with escrow ref `ref` that withdrawals already took back from its burn. */
async function penaltyUndone(tx: Tx, ref: string): Promise<bigint> {
  const rows = await tx.$queryRaw<{ args: Record<string, unknown> }[]>`
    SELECT args FROM "Settlement" WHERE kind = 'penalty' AND args ? 'undone'`;
  const row = rows.find((r) => penaltyRef(String(r.args.penaltyId)) === ref.toLowerCase());
  return row ? BigInt(String(row.args.undone)) : 0n;
}

/**
 * The escrow paid `amount` of an address's bonds out to a withdrawal before their locks reached
 * it: those bonds were never on chain. The newest blocks it holds a bond on carry that much less,
 * so their release or slash moves what the ledger still has locked (their lock transactions
 * revert on chain and are reported).
 */
async function shrinkBonds(tx: Tx, account: string, amount: bigint): Promise<void> {
  const blocks = await tx.$queryRaw<{ number: number; bond: string }[]>`
    SELECT number, "bondAmount"::text AS bond FROM "Block"
    WHERE winner = ${account} AND "bondAmount" > 0 AND stage <> 'paid'
      AND NOT (stages ? 'deadline_missed')
    ORDER BY number DESC FOR UPDATE`;
  let left = amount;
  for (const b of blocks) {
    if (left === 0n) break;
    const bond = BigInt(b.bond);
    const cut = bond < left ? bond : left;
    await tx.block.update({
      where: { number: b.number },
      data: { bondAmount: (bond - cut).toString() },
    });
    left -= cut;
  }
}

async function lockedBalance(tx: Tx, account: string): Promise<bigint> {
  await tx.$queryRaw`SELECT account FROM "AccountBalance" WHERE account = ${account} FOR UPDATE`;
  return balanceOf(tx, account);
}

/**
 * Reverses a movement (its block left the chain): the same legs with opposite signs. A reversed
 * deposit whose collateral live bids hold cancels those bids first.
 */
export async function reverseMovement(
  tx: Tx,
  movementId: string,
  meta: { ref: string; nowMs: number },
): Promise<string> {
  const rows = await tx.ledgerEntry.findMany({ where: { movementId } });
  if (rows.length === 0) throw new Error(`no movement ${movementId} to reverse`);
  const kind = rows[0]!.kind as MovementKind;
  const legs = rows.map((r) => ({ account: r.account, amount: -BigInt(r.amount.toFixed()) }));
  const input = {
    kind,
    legs,
    blockNumber: rows[0]!.blockNumber,
    ref: meta.ref,
    nowMs: meta.nowMs,
    movementId: `${movementId}:reversed`,
  };
  const provers = [
    ...new Set(
      legs.flatMap((l) => /^prover:(0x[0-9a-f]{40}):/.exec(l.account)?.[1] ?? []).map(getAddress),
    ),
  ].sort();
  for (const p of provers) await lockProver(tx, p);
  for (const leg of legs) {
    const m = /^prover:(0x[0-9a-f]{40}):available$/.exec(leg.account);
    if (m && leg.amount < 0n && (await lockedBalance(tx, leg.account)) < -leg.amount) {
      await cancelLiveBids(tx, getAddress(m[1]!), meta.nowMs);
    }
  }
  return applyMovement(tx, input);
}

/** The prover's bid lock (pb_lock_prover), taken by bid writes before any balance row. */
async function lockProver(tx: Tx, prover: string): Promise<void> {
  await tx.$queryRaw`SELECT pb_lock_prover(${prover})::text AS locked`;
}
