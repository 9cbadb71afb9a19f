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
 * reservations), those bids are cancelled and their reservations released first; then penalty
 * burns the escrow has not applied yet. What is still missing can only be a bond the aggregator
 * locked before the L1 saw the withdrawal, so it is taken from the locked bonds (shrinkBonds), or,
 * when the ledger already slashed that bond, from the slash (undoUnlockedSlashes); either way the
 * bond's owed lock shrinks to match (shrinkOwedLock). A withdrawal the ledger cannot explain
 * even then throws InsufficientBalanceError.
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
  if (fromBonds - left > 0n) await shrinkBonds(tx, account, fromBonds - left);
  if (left > 0n) legs.push(...(await undoUnlockedSlashes(tx, account, left, (n) => (left -= n))));
  if (left > 0n) throw new InsufficientBalanceError(accounts.available(account), left);
  return legs;
}

/**
 * The escrow paid a withdrawal out of a bond the ledger had already slashed (its deadline passed
 * before the index saw the withdrawal) but whose lock had not reached the escrow: on chain that
 * collateral was free, and the escrow can neither burn it nor credit the sequencer its share. Up
 * to `amount` of such slashes, newest block first, is taken back (from `burn` and the sequencer's
 * earnings, as the escrow's slash of the smaller bond will split it) and the block's bond and
 * owed lock shrink by as much, so the escrow locks and slashes what the ledger did.
 */
async function undoUnlockedSlashes(
  tx: Tx,
  account: string,
  amount: bigint,
  took: (n: bigint) => void,
): Promise<Leg[]> {
  const blocks = await tx.$queryRaw<{ number: number; bond: string }[]>`
    SELECT number, "bondAmount"::text AS bond FROM "Block"
    WHERE winner = ${account} AND "bondAmount" > 0 AND stages ? 'deadline_missed'
    ORDER BY number DESC FOR UPDATE`;
  const legs: Leg[] = [];
  let left = amount;
  for (const b of blocks) {
    if (left === 0n) break;
    // Locked on chain before this withdrawal: the escrow did not pay it out (logs are booked in
    // chain order).
    const locked = await tx.chainLog.count({
      where: {
        event: "BondLocked",
        removed: false,
        args: { path: ["blockNumber"], equals: String(b.number) },
      },
    });
    if (locked > 0) continue;
    const slash = await tx.ledgerEntry.findMany({
      where: { kind: "slash", blockNumber: b.number, amount: { gt: 0 } },
    });
    const seqLeg = slash.find((e) => e.account.startsWith("earnings:"));
    const bond = BigInt(b.bond);
    const cut = bond < left ? bond : left;
    const smaller = bond - cut;
    let fromSeq = 0n;
    if (seqLeg) {
      const shareOf = await slashSplit(tx, b.number, slash);
      fromSeq = shareOf(bond) - shareOf(smaller);
      // Never more than the sequencer still holds: the rest comes from the burn.
      const has = await lockedBalance(tx, seqLeg.account);
      if (fromSeq > has) fromSeq = has;
      if (fromSeq > 0n) legs.push({ account: seqLeg.account, amount: -fromSeq });
    }
    if (cut - fromSeq > 0n) legs.push({ account: accounts.burn, amount: -(cut - fromSeq) });
    await tx.block.update({
      where: { number: b.number },
      data: { bondAmount: smaller.toString() },
    });
    await tx.penalty.updateMany({
      where: { id: `${b.number}:slash` },
      data: { amount: smaller.toString() },
    });
    await shrinkOwedLock(tx, b.number, smaller);
    left -= cut;
  }
  if (left < amount) took(amount - left);
  return legs;
}

/**
 * The sequencer's share of a slash of a given bond on block `n`: by the split the aggregator
 * recorded with the slash it owes the escrow (SLASH_TO_SEQUENCER_BPS, the escrow's own), else in
 * the proportion of the ledger's slash (its positive legs).
 */
async function slashSplit(
  tx: Tx,
  n: number,
  slash: { account: string; amount: { toFixed(): string } }[],
): Promise<(bond: bigint) => bigint> {
  const row = await tx.settlement.findUnique({ where: { key: `slash:${n}` } });
  const bps = (row?.args as Record<string, unknown> | undefined)?.slashToSequencerBps;
  if (bps !== undefined) return (bond) => (bond * BigInt(String(bps))) / 10_000n;
  const total = slash.reduce((sum, e) => sum + BigInt(e.amount.toFixed()), 0n);
  const share = slash
    .filter((e) => e.account.startsWith("earnings:"))
    .reduce((sum, e) => sum + BigInt(e.amount.toFixed()), 0n);
  return (bond) => (total === 0n ? 0n : (bond * share) / total);
}

/**
 * A block's bond shrank in the ledger before its lock was sent: the owed lock asks the escrow for
 * the smaller bond (it would otherwise fail, or lock more than the ledger holds if collateral
 * came in meanwhile), or is not sent at all when nothing is left (nor is the block's slash, which
 * could only fail on a block without a bond). A lock already sent is left as it is.
 */
async function shrinkOwedLock(tx: Tx, n: number, bond: bigint): Promise<void> {
  const lock = await tx.settlement.findUnique({ where: { key: `lock:${n}` } });
  if (lock?.status !== "pending") return;
  if (bond > 0n) {
    await tx.settlement.update({
      where: { id: lock.id },
      data: { args: { ...(lock.args as Record<string, unknown>), amount: bond.toString() } },
    });
    return;
  }
  await tx.settlement.updateMany({
    where: { key: { in: [`lock:${n}`, `slash:${n}`] }, status: "pending" },
    data: {
      status: "cancelled",
      errorCode: "BOND_WITHDRAWN",
      error: "a withdrawal the escrow took first left no bond to lock",
    },
  });
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
 * so their release or slash moves what the ledger still has locked, and their owed locks ask the
 * escrow for that much (shrinkOwedLock).
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
    await shrinkOwedLock(tx, b.number, bond - cut);
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
