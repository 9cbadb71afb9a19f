// What each escrow event does to the double-entry ledger (COLLATERAL=chain).
//
// The escrow keeps, per address, `free`, `locked` and `pending` wei. The ledger mirrors them:
//   free    = prover:<a>:available + prover:<a>:reserved + earnings:<a>
//   locked  = prover:<a>:locked
//   pending = prover:<a>:withdrawing
// and a block's funded reward sits in escrow:reward:<n> until the block is paid.
//
// Only money that enters or leaves the escrow by its users' own hand is booked by the indexer:
// deposits, withdrawals and funded rewards, and a funded reward's refund (below). Bond locks, releases, slashes and settlements are the
// aggregator's decisions: the aggregator books them in the ledger when it makes them, and the
// settler sends the matching transaction; their events are indexed (for the record and for
// reconciliation) but move nothing, save a lock the escrow took for more than the ledger's
// bond (followLockedBond; the rest slashed at once if the ledger has slashed its block, as the
// escrow will). So are penalties (the relay burns up to the operator's free
// collateral in the ledger and the settler sends `penalize` for that amount), with one
// exception: when the escrow found less free than the ledger took (a withdrawal asked on chain
// first), the `Penalized` event's shortfall (requested - burned) goes back from `burn` to the
// prover's free collateral, so both hold what the escrow actually burned. A withdrawal booked
// while a penalty the ledger burned is not yet applied on chain may take that burn back (the
// escrow still had it free); the penalty's Penalized event then gives back only the rest, or,
// if the escrow burned more than the ledger still holds burned for it (a deposit or reward came
// in after that withdrawal), burns the excess from the prover's free collateral in the ledger too.
//
// A reward funded for a block the market cannot represent (beyond MARKET_MAX_BLOCK) is booked
// nowhere; the settler owes the escrow its refund, and the RewardRefunded of such a block credits
// the sequencer from outside the ledger (the funding never came in). A block that expired in
// open proving is refunded too (the aggregator owes it); its RewardRefunded moves its funded
// reward from escrow:reward:<n> to the sequencer's earnings.
import {
  accounts,
  applyMovement,
  balanceOf,
  cancelLiveBids,
  isGuarded,
  type Leg,
  type MovementKind,
  PrismaNamespace,
  type Tx,
} from "@prover-boost/db";
import { getAddress } from "viem";
import { inMarketRange, MARKET_MAX_BLOCK } from "./block-range.ts";
import { penaltyRef } from "./penalty-ref.ts";

export interface EscrowEvent {
  eventName: string;
  args: Record<string, unknown>;
}

export interface MovementMeta {
  movementId: string;
  ref: string;
  nowMs: number;
  /** Where the shortfalls the movement books are told (to be logged once committed). */
  shortfalls?: Shortfall[];
}

/**
 * What the L1 took from a ledger account that no longer held it: booked against
 * accounts.shortfall(account) so the index goes on (a throw would fail every later pass).
 */
export interface Shortfall {
  account: string;
  amount: bigint;
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
      // A shortfall of the prover's (shortfallLegs) is repaid first.
      const owedAt = accounts.shortfall(accounts.available(account));
      const owed = -(await lockedBalance(tx, owedAt));
      const repay = owed <= 0n ? 0n : owed < wei(a.amount) ? owed : wei(a.amount);
      return applyMovement(tx, {
        kind: "deposit",
        legs: [
          { account: accounts.deposits, amount: -wei(a.amount) },
          { account: accounts.available(account), amount: wei(a.amount) - repay },
          { account: owedAt, amount: repay },
        ],
        ...base,
      });
    }
    case "WithdrawalRequested": {
      const account = addr(a.account);
      const legs = await takeFromFree(tx, account, wei(a.amount), meta);
      return applyMovement(tx, {
        kind: "withdrawal",
        legs: [...legs, { account: accounts.withdrawing(account), amount: wei(a.amount) }],
        ...base,
      });
    }
    case "WithdrawalCancelled": {
      const account = addr(a.account);
      const amount = wei(a.amount);
      // What withdrawals took of the prover's bonds before their locks goes back to them first.
      const back = await restoreBonds(tx, account, amount, meta.nowMs);
      const legs: Leg[] = [{ account: accounts.withdrawing(account), amount: -amount }];
      if (back > 0n) legs.push({ account: accounts.locked(account), amount: back });
      if (amount > back) legs.push({ account: accounts.available(account), amount: amount - back });
      return applyMovement(tx, { kind: "withdrawal", legs, ...base });
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
    case "RewardFunded": {
      const n = wei(a.blockNumber);
      // A block the market cannot represent: booked nowhere (the indexer logs it), and its
      // reward is owed back to the sequencer.
      if (!inMarketRange(n)) {
        await oweRefund(tx, n, addr(a.sequencer), wei(a.amount), meta.nowMs);
        return null;
      }
      return applyMovement(tx, {
        kind: "reward",
        legs: [
          { account: accounts.rewards, amount: -wei(a.amount) },
          { account: accounts.reward(n), amount: wei(a.amount) },
        ],
        blockNumber: Number(n),
        ...base,
      });
    }
    case "RewardRefunded": {
      // The refund of a block the market cannot represent credits the sequencer all the same
      // (the escrow did): its funding was never booked, so the credit comes from outside.
      const n = wei(a.blockNumber);
      const inRange = inMarketRange(n);
      return applyMovement(tx, {
        kind: "reward",
        legs: [
          { account: inRange ? accounts.reward(n) : accounts.rewards, amount: -wei(a.amount) },
          { account: accounts.earnings(addr(a.sequencer)), amount: wei(a.amount) },
        ],
        blockNumber: inRange ? Number(n) : null,
        ...base,
      });
    }
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
      const legs = await takeFromFree(tx, prover, -short, meta);
      return applyMovement(tx, {
        kind: "penalty",
        legs: [...legs, { account: accounts.burn, amount: -short }],
        ...base,
      });
    }
    case "BondLocked": {
      const n = wei(a.blockNumber);
      if (!inMarketRange(n)) return null;
      return followLockedBond(tx, Number(n), addr(a.prover), wei(a.amount), meta);
    }
    default:
      return null;
  }
}

/**
 * A lock the escrow took for more than the ledger's bond of its block: a withdrawal booked before
 * it (in the chain's order) shrank the bond while its lock was on its way, and a cancellation, or
 * a reorg that took the withdrawal away, gave the collateral back before the lock landed, so the
 * escrow locked the whole amount the lock asked for. The ledger follows the escrow: the
 * difference comes from the prover's free collateral (earnings, then available, ending live bids
 * that hold it, as a withdrawal would), the bond and its lock row say the amount locked, and
 * whatever the ledger cannot find is a shortfall. Else the ledger would count as free what the
 * escrow holds locked, and the prover could bid it again. The difference goes to `locked`, or,
 * when the ledger has slashed the block already (its deadline missed), to the slash
 * (slashLockedRest): the escrow will slash all it locked. Returns null when the ledger's bond is
 * the amount locked.
 */
async function followLockedBond(
  tx: Tx,
  n: number,
  prover: string,
  amount: bigint,
  meta: MovementMeta,
): Promise<string | null> {
  // Read unlocked first: almost always the bond is the amount locked, and nothing is taken. A
  // block slashed in the ledger (open proving, or proven there) follows only while its slash can
  // still go out (neither paid nor expired).
  const slashId = `${n}:slash`;
  const bondOf = async (lock: boolean) => {
    const [row] = await tx.$queryRaw<{ bond: string; missed: boolean; slashed: boolean }[]>`
      SELECT coalesce("bondAmount", 0)::text AS bond, stages ? 'deadline_missed' AS missed,
        EXISTS (SELECT 1 FROM "Penalty" WHERE id = ${slashId}) AS slashed
      FROM "Block" WHERE number = ${n} AND winner = ${prover}
        AND stage IN ('committed', 'proving', 'proven', 'open_proving')
      ${lock ? PrismaNamespace.sql`FOR UPDATE` : PrismaNamespace.empty}`;
    // A block whose deadline passed with no bond to slash (a withdrawal had left none) holds no
    // bond of its winner's in the ledger, in open proving or proven there: nothing follows.
    if (!row || (row.missed && !row.slashed)) return { bond: 0n, extra: 0n, slashed: false };
    return { bond: BigInt(row.bond), extra: amount - BigInt(row.bond), slashed: row.missed };
  };
  if ((await bondOf(false)).extra <= 0n) return null;
  // The prover's bid lock, then the block, then balance rows (as a withdrawal's bonds are taken).
  await lockProver(tx, prover);
  const { bond, extra, slashed } = await bondOf(true);
  if (extra <= 0n) return null;
  const { legs, left } = await takeFreeCollateral(tx, prover, extra, meta.nowMs);
  if (left > 0n) legs.push(shortfallLeg(accounts.available(prover), left, meta.shortfalls));
  await tx.block.update({ where: { number: n }, data: { bondAmount: amount.toString() } });
  const [lock] = await tx.$queryRaw<{ id: bigint; args: Record<string, unknown> }[]>`
    SELECT id, args FROM "Settlement" WHERE key = ${`lock:${n}`} FOR UPDATE`;
  if (lock) {
    await tx.settlement.update({
      where: { id: lock.id },
      data: { args: { ...lock.args, amount: amount.toString() }, updatedAt: BigInt(meta.nowMs) },
    });
  }
  const to = slashed
    ? await slashLockedRest(tx, n, bond, amount, meta)
    : [{ account: accounts.locked(prover), amount: extra }];
  return applyMovement(tx, {
    kind: slashed ? "slash" : "lock",
    legs: [...legs, ...to],
    blockNumber: n,
    movementId: meta.movementId,
    ref: meta.ref,
    nowMs: meta.nowMs,
  });
}

/**
 * Block `n`'s lock landed for `amount` though the ledger had slashed it for `bond` only: a
 * withdrawal took the slash back while the lock was on its way (undoUnlockedSlashes), and a reorg
 * took that withdrawal away, but the lock, sent with the whole bond, landed on the new fork. The
 * escrow slashes whatever it locked, so the ledger slashes the difference too: the returned legs
 * split it between the sequencer's earnings and `burn` (as the escrow will: slashSplit), the
 * block's slash penalty says the whole amount, and its slash, cancelled or reverted for want of
 * a bond meanwhile, is owed again behind the lock. The slash row records what this movement
 * slashed (`restBy`), for a reorg that takes the lock away (unslashLockedRest): its legs alone
 * cannot say it when the prover is the block's sequencer (its two earnings legs net out).
 */
async function slashLockedRest(
  tx: Tx,
  n: number,
  bond: bigint,
  amount: bigint,
  meta: Pick<MovementMeta, "movementId" | "nowMs">,
): Promise<Leg[]> {
  const [auction] = await tx.$queryRaw<{ sequencer: string }[]>`
    SELECT sequencer FROM "Auction" WHERE "blockNumber" = ${n}`;
  const slash = await tx.ledgerEntry.findMany({
    where: { kind: "slash", blockNumber: n, amount: { gt: 0 } },
  });
  const shareOf = await slashSplit(tx, n, slash);
  const toSeq = shareOf(amount) - shareOf(bond);
  const legs: Leg[] = [{ account: accounts.burn, amount: amount - bond - toSeq }];
  if (toSeq > 0n) legs.push({ account: accounts.earnings(auction!.sequencer), amount: toSeq });
  await tx.penalty.updateMany({
    where: { id: `${n}:slash` },
    data: { amount: amount.toString() },
  });
  const now = BigInt(meta.nowMs);
  const [slashRow] = await tx.$queryRaw<
    { id: bigint; status: string; errorCode: string | null; args: Record<string, unknown> }[]
  >`SELECT id, status, "errorCode", args FROM "Settlement" WHERE key = ${`slash:${n}`}
    FOR UPDATE`;
  if (slashRow) {
    const restBy = { ...restByOf(slashRow.args), [meta.movementId]: (amount - bond).toString() };
    const owedAgain =
      slashRow.status === "reverted" ||
      (slashRow.status === "cancelled" && slashRow.errorCode === "BOND_WITHDRAWN");
    await tx.settlement.update({
      where: { id: slashRow.id },
      data: {
        args: { ...slashRow.args, restBy },
        updatedAt: now,
        ...(owedAgain
          ? { status: "pending", txHash: null, errorCode: null, error: null, nextAttemptAt: now }
          : {}),
      },
    });
  }
  return legs;
}

const restByOf = (args: Record<string, unknown>) => (args.restBy ?? {}) as Record<string, string>;

/**
 * The legs that take `amount` out of an address's free escrow balance as the ledger sees it:
 * earnings first, then free collateral. If live bids hold the rest (the L1 does not know about
 * reservations), those bids are cancelled and their reservations released first; then penalty
 * burns the escrow has not applied yet. What is still missing can only be a bond the aggregator
 * locked before the L1 saw the withdrawal, so it is taken from the locked bonds (shrinkBonds), or,
 * when the ledger already slashed that bond, from the slash (undoUnlockedSlashes); either way the
 * bond's owed lock shrinks to match (shrinkOwedLock). What the ledger cannot explain even then
 * (the escrow had more free than the ledger) is a shortfall: taken from
 * accounts.shortfall(<available>), told in `meta.shortfalls`.
 */
async function takeFromFree(
  tx: Tx,
  account: string,
  amount: bigint,
  meta: Pick<MovementMeta, "movementId" | "nowMs" | "shortfalls">,
) {
  const nowMs = meta.nowMs;
  // The prover's bid lock before its balance rows, in the order bid writes take them (no deadlock).
  await lockProver(tx, account);
  const taken = await takeFreeCollateral(tx, account, amount, nowMs);
  const legs = taken.legs;
  let left = taken.left;
  const took = (n: bigint) => {
    left -= n;
  };
  if (left > 0n) {
    legs.push(...(await undoUnsentPenalties(tx, account, left, meta.movementId, took)));
  }
  const fromBonds = left;
  const locked = await lockedBalance(tx, accounts.locked(account));
  const fromLocked = locked < left ? locked : left;
  if (fromLocked > 0n) legs.push({ account: accounts.locked(account), amount: -fromLocked });
  left -= fromLocked;
  if (fromBonds - left > 0n) await shrinkBonds(tx, account, fromBonds - left, nowMs);
  if (left > 0n) {
    const undo = await undoUnlockedSlashes(tx, account, left, meta.movementId, nowMs, took);
    legs.push(...undo);
  }
  if (left > 0n) legs.push(shortfallLeg(accounts.available(account), left, meta.shortfalls));
  return legs;
}

/**
 * The legs that take up to `amount` from an address's earnings, then its free collateral (live
 * bids holding what is missing ended first, their reservations released), and what is still
 * missing. The caller holds the prover's bid lock.
 */
async function takeFreeCollateral(
  tx: Tx,
  account: string,
  amount: bigint,
  nowMs: number,
): Promise<{ legs: Leg[]; left: bigint }> {
  const legs: Leg[] = [];
  let left = amount;
  const take = async (acct: string) => {
    const have = await lockedBalance(tx, acct);
    const n = have < left ? have : left;
    if (n > 0n) legs.push({ account: acct, amount: -n });
    left -= n;
  };
  await take(accounts.earnings(account));
  if (left > 0n && (await lockedBalance(tx, accounts.available(account))) < left) {
    await cancelLiveBids(tx, account, nowMs);
  }
  await take(accounts.available(account));
  return { legs, left };
}

function shortfallLeg(account: string, amount: bigint, told?: Shortfall[]): Leg {
  told?.push({ account, amount });
  return { account: accounts.shortfall(account), amount: -amount };
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
  movementId: string,
  nowMs: number,
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
    // Locked on chain before this withdrawal: the escrow did not pay it out.
    if (await lockedOnChain(tx, b.number)) continue;
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
    // The lock before the slash, in the order the settler takes them.
    await shrinkOwedLock(tx, b.number, smaller, nowMs);
    await noteSlashCut(tx, b.number, movementId, {
      cut: cut.toString(),
      fromSeq: fromSeq.toString(),
      sequencer: seqLeg?.account ?? "",
      prover: account,
    });
    left -= cut;
  }
  if (left < amount) took(amount - left);
  return legs;
}

/** What a movement took back of a slashed bond (undoUnlockedSlashes), for a reorg to undo. */
type SlashCut = {
  cut: string;
  /** Of it, from the sequencer's earnings account `sequencer` ("" when none); the rest from burn. */
  fromSeq: string;
  sequencer: string;
  /** The block's winner, whose free collateral the cut becomes if its bond cannot be whole. */
  prover: string;
};

const cutByOf = (args: Record<string, unknown>) => (args.cutBy ?? {}) as Record<string, SlashCut>;

/** Records on block `n`'s owed slash what movement `movementId` took back of its bond. */
async function noteSlashCut(tx: Tx, n: number, movementId: string, cut: SlashCut): Promise<void> {
  const [slash] = await tx.$queryRaw<{ id: bigint; args: Record<string, unknown> }[]>`
    SELECT id, args FROM "Settlement" WHERE key = ${`slash:${n}`} FOR UPDATE`;
  if (!slash) return;
  const cutBy = { ...cutByOf(slash.args), [movementId]: cut };
  await tx.settlement.update({ where: { id: slash.id }, data: { args: { ...slash.args, cutBy } } });
}

/**
 * A reorg took away movement `movementId`, which had taken slashed bonds back
 * (undoUnlockedSlashes; its reversal puts the legs back in `burn` and the sequencer's earnings).
 * Where the block's lock can still go out whole (not sent yet, reverted, or cancelled for want of
 * a bond, and the block neither paid nor expired), its bond, slash penalty and owed lock and
 * slash are whole again: the escrow, which paid no withdrawal on the new fork, locks and slashes
 * it, and a withdrawal mined again there takes it back once more. Elsewhere (the lock went out
 * with the smaller bond, or never will) the escrow holds the cut free: the returned legs move it
 * from `burn` and the sequencer's earnings to the prover's free collateral. (A lock sent whole
 * that lands on the new fork after all is slashed again once booked: slashLockedRest.)
 */
async function restoreSlashedBonds(tx: Tx, movementId: string, nowMs: number): Promise<Leg[]> {
  const found = await tx.$queryRaw<{ n: number }[]>`
    SELECT "blockNumber" AS n FROM "Settlement"
    WHERE kind = 'slash' AND args->'cutBy' ? ${movementId} ORDER BY id`;
  const now = BigInt(nowMs);
  const again = { txHash: null, errorCode: null, error: null, nextAttemptAt: now, updatedAt: now };
  const withdrawn = (s: { status: string; errorCode: string | null }) =>
    s.status === "cancelled" && s.errorCode === "BOND_WITHDRAWN";
  const legs: Leg[] = [];
  for (const { n } of found) {
    // The lock before the slash, in the order the settler takes them.
    const [lock] = await tx.$queryRaw<
      { id: bigint; status: string; errorCode: string | null; args: Record<string, unknown> }[]
    >`SELECT id, status, "errorCode", args FROM "Settlement" WHERE key = ${`lock:${n}`}
      FOR UPDATE`;
    const [slash] = await tx.$queryRaw<
      { id: bigint; status: string; errorCode: string | null; args: Record<string, unknown> }[]
    >`SELECT id, status, "errorCode", args FROM "Settlement" WHERE key = ${`slash:${n}`}
      FOR UPDATE`;
    if (!slash) continue;
    const { [movementId]: cut, ...rest } = cutByOf(slash.args);
    if (!cut) continue;
    await tx.settlement.update({
      where: { id: slash.id },
      data: { args: { ...slash.args, cutBy: rest } },
    });
    const [b] = await tx.$queryRaw<{ bond: string; stage: string }[]>`
      SELECT coalesce("bondAmount", 0)::text AS bond, stage FROM "Block" WHERE number = ${n}
      FOR UPDATE`;
    const owed =
      lock && (lock.status === "pending" || lock.status === "reverted" || withdrawn(lock));
    if (!b || !owed || b.stage === "paid" || b.stage === "expired") {
      const fromSeq = BigInt(cut.fromSeq);
      if (fromSeq > 0n) legs.push({ account: cut.sequencer, amount: -fromSeq });
      if (BigInt(cut.cut) > fromSeq) {
        legs.push({ account: accounts.burn, amount: -(BigInt(cut.cut) - fromSeq) });
      }
      legs.push({ account: accounts.available(getAddress(cut.prover)), amount: BigInt(cut.cut) });
      continue;
    }
    const bond = (BigInt(b.bond) + BigInt(cut.cut)).toString();
    await tx.block.update({ where: { number: n }, data: { bondAmount: bond } });
    await tx.penalty.updateMany({ where: { id: `${n}:slash` }, data: { amount: bond } });
    await tx.settlement.update({
      where: { id: lock.id },
      data: { status: "pending", args: { ...lock.args, amount: bond }, ...again },
    });
    if (withdrawn(slash) || slash.status === "reverted") {
      await tx.settlement.update({
        where: { id: slash.id },
        data: { status: "pending", ...again },
      });
    }
  }
  return legs;
}

/**
 * A reorg took away the BondLocked whose booking (movement `movementId`) slashed the rest of
 * block `n`'s lock (slashLockedRest, which recorded how much on the block's slash): the block's
 * bond and slash penalty are what they were before it, and its owed lock asks for that bond
 * again, or, with none left, is cancelled with the slash if not sent yet (shrinkOwedLock; a lock
 * on its way is cancelled once it reverts). A lock that lands again is booked, and slashed, again.
 */
async function unslashLockedRest(
  tx: Tx,
  n: number,
  movementId: string,
  nowMs: number,
): Promise<void> {
  // The lock before the slash, in the order the settler takes them.
  const [lock] = await tx.$queryRaw<
    { id: bigint; status: string; args: Record<string, unknown> }[]
  >`SELECT id, status, args FROM "Settlement" WHERE key = ${`lock:${n}`} FOR UPDATE`;
  const [slash] = await tx.$queryRaw<{ id: bigint; args: Record<string, unknown> }[]>`
    SELECT id, args FROM "Settlement" WHERE key = ${`slash:${n}`} FOR UPDATE`;
  const [b] = await tx.$queryRaw<{ bond: string }[]>`
    SELECT coalesce("bondAmount", 0)::text AS bond FROM "Block" WHERE number = ${n} FOR UPDATE`;
  if (!slash || !b) return;
  const { [movementId]: rest, ...others } = restByOf(slash.args);
  if (rest === undefined) return;
  await tx.settlement.update({
    where: { id: slash.id },
    data: { args: { ...slash.args, restBy: others } },
  });
  const left = BigInt(b.bond) > BigInt(rest) ? BigInt(b.bond) - BigInt(rest) : 0n;
  await tx.block.update({ where: { number: n }, data: { bondAmount: left.toString() } });
  await tx.penalty.updateMany({ where: { id: `${n}:slash` }, data: { amount: left.toString() } });
  if (lock?.status === "confirmed") {
    // Confirmed on the fork the reorg took: the index reopens it after this, and it is sent
    // again, if it must be, for the bond left (none: cancelled, with the slash not sent yet).
    await tx.settlement.update({
      where: { id: lock.id },
      data: { args: { ...lock.args, amount: left.toString() }, updatedAt: BigInt(nowMs) },
    });
    if (left === 0n) {
      await tx.settlement.updateMany({
        where: { key: `slash:${n}`, status: "pending" },
        data: bondWithdrawn(nowMs),
      });
    }
    return;
  }
  await shrinkOwedLock(tx, n, left, nowMs);
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
 * A block's bond shrank in the ledger before its lock reached the escrow (the escrow paid the
 * rest to a withdrawal): the owed lock asks the escrow for the smaller bond, so the escrow ends
 * with exactly the ledger's bond locked, or is not sent at all when nothing is left (nor is the
 * block's slash, which could only fail on a block without a bond). Whatever the lock's state:
 * - pending: its amount shrinks (a lock of the old one would fail, or lock more than the ledger
 *   holds if collateral came in meanwhile);
 * - sent: its amount shrinks too; the transaction on its way asks for the old bond and reverts
 *   (the escrow no longer has it free), and the settler, seeing the row's amount changed, owes it
 *   again with this one (settler.ts, `reverted`);
 * - reverted (it reached the escrow after the withdrawal, and failed): owed again with the
 *   smaller bond, and so is the block's slash if it reverted (for want of a bond; sent again
 *   behind the lock, and a slash that reverts again for another reason stays reverted).
 * The lock row is taken first (FOR UPDATE), as the settler does when it records a revert, so
 * either side sees the other's change. A lock is owed again only after it reverted, and a
 * reverted lock locked nothing: owing it again cannot lock twice. A confirmed lock is left as it
 * is (its bond was on the escrow before the withdrawal; shrinkBonds spares it).
 */
async function shrinkOwedLock(tx: Tx, n: number, bond: bigint, nowMs: number): Promise<void> {
  const [lock] = await tx.$queryRaw<
    { id: bigint; status: string; args: Record<string, unknown> }[]
  >`SELECT id, status, args FROM "Settlement" WHERE key = ${`lock:${n}`} FOR UPDATE`;
  if (!lock || !["pending", "sent", "reverted"].includes(lock.status)) return;
  const args = { ...lock.args, amount: bond.toString() };
  const now = BigInt(nowMs);
  if (bond === 0n) {
    await tx.settlement.updateMany({
      where: { key: { in: [`lock:${n}`, `slash:${n}`] }, status: "pending" },
      data: bondWithdrawn(nowMs),
    });
    // On its way: the settler cancels it once it has reverted.
    if (lock.status === "sent") {
      await tx.settlement.update({ where: { id: lock.id }, data: { args, updatedAt: now } });
    }
    return;
  }
  if (lock.status !== "reverted") {
    await tx.settlement.update({ where: { id: lock.id }, data: { args, updatedAt: now } });
    return;
  }
  const again = { txHash: null, errorCode: null, error: null, nextAttemptAt: now, updatedAt: now };
  await tx.settlement.update({
    where: { id: lock.id },
    data: { status: "pending", args, ...again },
  });
  await tx.settlement.updateMany({
    where: { key: `slash:${n}`, status: "reverted" },
    data: { status: "pending", ...again },
  });
}

/** What a lock (or its block's slash) left with no bond to lock is recorded as: never sent. */
export const bondWithdrawn = (nowMs: number) => ({
  status: "cancelled",
  errorCode: "BOND_WITHDRAWN",
  error: "a withdrawal the escrow took first left no bond to lock",
  updatedAt: BigInt(nowMs),
});

/**
 * Whether block `n`'s bond lock is on the escrow as far as the index has booked (a BondLocked
 * log still on the chain). Logs are booked in chain order, so while a withdrawal is booked this
 * says whether the lock reached the escrow before it.
 */
async function lockedOnChain(tx: Tx, n: number): Promise<boolean> {
  const count = await tx.chainLog.count({
    where: {
      event: "BondLocked",
      removed: false,
      args: { path: ["blockNumber"], equals: String(n) },
    },
  });
  return count > 0;
}

/**
 * The escrow let a withdrawal have collateral the ledger had already burned for a penalty whose
 * `penalize` it had not applied yet (so on chain that collateral was still free, and the penalty
 * will burn less). Up to `amount` of those penalties' burns, oldest first, goes to the withdrawal
 * instead: legs from `burn`, and each penalty's settlement remembers how much was undone, so its
 * `Penalized` event gives back only the rest of its shortfall, and by which movement
 * (`undoneBy`), so a reorg that takes the movement away gives it back (restoreUndonePenalties).
 */
async function undoUnsentPenalties(
  tx: Tx,
  account: string,
  amount: bigint,
  movementId: string,
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
    const by = { ...undoneByOf(r.args), [movementId]: n.toString() };
    const undone = (BigInt(String(r.args.undone ?? "0")) + n).toString();
    await tx.settlement.update({
      where: { id: r.id },
      data: { args: { ...r.args, undone, undoneBy: by } },
    });
    left -= n;
    total += n;
  }
  if (total === 0n) return [];
  took(total);
  return [{ account: accounts.burn, amount: -total }];
}

const undoneByOf = (args: Record<string, unknown>) =>
  (args.undoneBy ?? {}) as Record<string, string>;

/**
 * A reorg took away movement `movementId`: what it had taken back of unsent penalties' burns
 * (undoUnsentPenalties; its reversal puts the legs back in `burn`) is theirs again, so a
 * withdrawal mined again on the new fork can take it back once more, and each `Penalized` event
 * gives back only what the movements still on the chain took.
 */
async function restoreUndonePenalties(tx: Tx, movementId: string): Promise<void> {
  const rows = await tx.$queryRaw<{ id: bigint; args: Record<string, unknown> }[]>`
    SELECT id, args FROM "Settlement"
    WHERE kind = 'penalty' AND args->'undoneBy' ? ${movementId}
    ORDER BY id FOR UPDATE`;
  for (const r of rows) {
    const { [movementId]: took, ...rest } = undoneByOf(r.args);
    const undone = BigInt(String(r.args.undone ?? "0")) - BigInt(took ?? "0");
    await tx.settlement.update({
      where: { id: r.id },
      data: { args: { ...r.args, undone: undone.toString(), undoneBy: rest } },
    });
  }
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
 * it: those bonds were never on chain. The blocks whose locks had not reached the escrow, newest
 * first, carry that much less, so their release or slash moves what the ledger still has locked,
 * and their owed locks ask the escrow for that much (shrinkOwedLock). A bond the escrow already
 * held when the withdrawal came was not paid out, and is cut only if the ledger cannot explain the
 * withdrawal otherwise (as before: the ledger's bonds then disagree with the escrow's anyway).
 */
async function shrinkBonds(tx: Tx, account: string, amount: bigint, nowMs: number): Promise<void> {
  const rows = await tx.$queryRaw<{ number: number; bond: string }[]>`
    SELECT number, "bondAmount"::text AS bond FROM "Block"
    WHERE winner = ${account} AND "bondAmount" > 0 AND stage <> 'paid'
      AND NOT (stages ? 'deadline_missed')
    ORDER BY number DESC FOR UPDATE`;
  const onChain = new Set<number>();
  for (const b of rows) if (await lockedOnChain(tx, b.number)) onChain.add(b.number);
  const blocks = [
    ...rows.filter((b) => !onChain.has(b.number)),
    ...rows.filter((b) => onChain.has(b.number)),
  ];
  let left = amount;
  for (const b of blocks) {
    if (left === 0n) break;
    const bond = BigInt(b.bond);
    const cut = bond < left ? bond : left;
    await tx.block.update({
      where: { number: b.number },
      data: { bondAmount: (bond - cut).toString() },
    });
    await shrinkOwedLock(tx, b.number, bond - cut, nowMs);
    left -= cut;
  }
}

/**
 * A prover took back (WithdrawalCancelled) a withdrawal that may have taken bonds of its blocks
 * before their locks reached the escrow (shrinkBonds): the collateral is free on the escrow again,
 * so up to `amount` of it goes back to those bonds, oldest block first, each up to the bond its
 * winning bid promised, and each block's lock asks the escrow for the bond again (owed anew if it
 * had been cancelled or had reverted). Else a prover could shed the bond of a block it won by
 * asking its collateral back and cancelling before the lock landed, two transactions with no
 * delay, and leave nothing to slash. Only blocks still to be proven by their winner (committed
 * or proving, no deadline missed) whose lock has not reached the escrow and is not on its way
 * (a lock sent asks for the amount it was built with). Returns the wei put back in bonds.
 */
async function restoreBonds(
  tx: Tx,
  account: string,
  amount: bigint,
  nowMs: number,
): Promise<bigint> {
  const rows = await tx.$queryRaw<{ number: number; bond: string; promised: string }[]>`
    SELECT b.number, coalesce(b."bondAmount", 0)::text AS bond, w."bondAmount"::text AS promised
    FROM "Block" b
      JOIN "Auction" a ON a."blockNumber" = b.number
      JOIN "Bid" w ON w.id = a."winnerBidId"
    WHERE b.winner = ${account} AND b.stage IN ('committed', 'proving')
      AND NOT (b.stages ? 'deadline_missed') AND w."bondAmount" > coalesce(b."bondAmount", 0)
    ORDER BY b.number FOR UPDATE OF b`;
  let left = amount;
  for (const b of rows) {
    if (left === 0n) break;
    if (await lockedOnChain(tx, b.number)) continue;
    const [lock] = await tx.$queryRaw<
      { id: bigint; status: string; errorCode: string | null; args: Record<string, unknown> }[]
    >`SELECT id, status, "errorCode", args FROM "Settlement" WHERE key = ${`lock:${b.number}`}
      FOR UPDATE`;
    // A lock not sent yet, reverted, or cancelled for want of a bond (never another way).
    const owed =
      lock?.status === "pending" ||
      lock?.status === "reverted" ||
      (lock?.status === "cancelled" && lock.errorCode === "BOND_WITHDRAWN");
    if (!lock || !owed) continue;
    const missing = BigInt(b.promised) - BigInt(b.bond);
    const put = missing < left ? missing : left;
    const bond = BigInt(b.bond) + put;
    await tx.block.update({ where: { number: b.number }, data: { bondAmount: bond.toString() } });
    const now = BigInt(nowMs);
    await tx.settlement.update({
      where: { id: lock.id },
      data: {
        status: "pending",
        args: { ...lock.args, amount: bond.toString() },
        txHash: null,
        errorCode: null,
        error: null,
        nextAttemptAt: now,
        updatedAt: now,
      },
    });
    left -= put;
  }
  return amount - left;
}

/**
 * Why an escrow event is recorded but not booked because the market cannot represent it (a
 * RewardFunded of a block beyond MARKET_MAX_BLOCK), or null. The caller logs it as an error.
 */
export function unrepresentable(event: EscrowEvent): string | null {
  if (event.eventName !== "RewardFunded") return null;
  const n = wei(event.args.blockNumber);
  if (inMarketRange(n)) return null;
  const refund =
    wei(event.args.amount) > 0n
      ? `its reward is owed back to the sequencer (settlement refund:${n})`
      : "its reward is zero (nothing to refund)";
  return `block ${n} is beyond the market's last block (${MARKET_MAX_BLOCK}): not booked; ${refund}`;
}

/**
 * A reward escrowed for a block the market cannot represent (it will never settle it): the
 * settler owes the escrow a refundReward, which credits it back to the sequencer's free balance
 * (the contract refunds a block at most once). Filed under block 0, like a penalty outside any
 * block; the block is in its args. Seen again (the log back on the chain after a reorg), a
 * refund that reverted (its funding had left the chain) is owed again.
 */
async function oweRefund(
  tx: Tx,
  n: bigint,
  sequencer: string,
  amount: bigint,
  nowMs: number,
): Promise<void> {
  if (amount === 0n) return;
  const key = `refund:${n}`;
  const args = { blockNumber: n.toString(), sequencer, amount: amount.toString() };
  const now = BigInt(nowMs);
  await tx.settlement.upsert({
    where: { key },
    create: {
      key,
      kind: "refund",
      blockNumber: 0,
      args,
      nextAttemptAt: now,
      createdAt: now,
      updatedAt: now,
    },
    update: {},
  });
  await tx.settlement.updateMany({
    where: { key, status: "reverted" },
    data: {
      status: "pending",
      args,
      txHash: null,
      errorCode: null,
      error: null,
      nextAttemptAt: now,
      updatedAt: now,
    },
  });
}

async function lockedBalance(tx: Tx, account: string): Promise<bigint> {
  await tx.$queryRaw`SELECT account FROM "AccountBalance" WHERE account = ${account} FOR UPDATE`;
  return balanceOf(tx, account);
}

/**
 * Reverses a movement (its block left the chain): the same legs with opposite signs. A reversed
 * deposit whose collateral live bids hold cancels those bids first. What an account no longer
 * holds (a reversed deposit the ledger already locked, burned or paid out) is taken as far as
 * it goes, and the rest is a shortfall (accounts.shortfall, told in `meta.shortfalls`): the
 * reversal never fails, so the index is never stuck on it.
 */
export async function reverseMovement(
  tx: Tx,
  movementId: string,
  meta: { ref: string; nowMs: number; shortfalls?: Shortfall[] },
): Promise<string> {
  const rows = await tx.ledgerEntry.findMany({ where: { movementId } });
  if (rows.length === 0) {
    // Legs that cancelled out (a `Penalized` whose give-back a withdrawal's undo matched): no
    // ledger rows, but what it took back of penalties or slashes is theirs again. (A slash's
    // legs here take nothing from the sequencer: a movement that took from its earnings credits
    // nothing back to them, so it never cancels out; `burn` still holds the slash's burn.)
    await restoreUndonePenalties(tx, movementId);
    const legs = await restoreSlashedBonds(tx, movementId, meta.nowMs);
    if (legs.length > 0) {
      const id = `${movementId}:reversed`;
      await applyMovement(tx, {
        kind: "withdrawal",
        legs,
        ref: meta.ref,
        nowMs: meta.nowMs,
        movementId: id,
      });
    }
    return `${movementId}:reversed`;
  }
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
  for (const leg of [...legs]) {
    if (leg.amount >= 0n || !isGuarded(leg.account)) continue;
    const m = /^prover:(0x[0-9a-f]{40}):available$/.exec(leg.account);
    let have = await lockedBalance(tx, leg.account);
    if (m && have < -leg.amount) {
      await cancelLiveBids(tx, getAddress(m[1]!), meta.nowMs);
      have = await lockedBalance(tx, leg.account);
    }
    if (have < -leg.amount) {
      legs.push(shortfallLeg(leg.account, -leg.amount - have, meta.shortfalls));
      leg.amount = -have;
    }
  }
  // Only the index's own movements are reversed: a `lock` among them is a lock's top-up, and a
  // `slash` the rest of a lock whose block the ledger had slashed (slashLockedRest).
  if (kind === "withdrawal" || kind === "lock") await bondsFollow(tx, legs, meta.nowMs);
  if (kind === "slash") await unslashLockedRest(tx, rows[0]!.blockNumber!, movementId, meta.nowMs);
  await restoreUndonePenalties(tx, movementId);
  legs.push(...(await restoreSlashedBonds(tx, movementId, meta.nowMs)));
  input.legs = legs.filter((l) => l.amount !== 0n);
  return applyMovement(tx, input);
}

/**
 * The reversal of a withdrawal's movement (a reorg took its log) moves a prover's locked
 * collateral, and the bonds of its blocks follow, as they did the movement: what a withdrawal
 * had taken of bonds before their locks goes back to them (restoreBonds; what no bond can take
 * back, its lock sent or on the escrow meanwhile, goes to the prover's free collateral, as the
 * escrow holds it), and what a cancelled withdrawal had put back in bonds leaves them again
 * (shrinkBonds). Else a withdrawal mined again on the new fork would shrink the bonds a second
 * time, and the ledger's locked collateral would no longer be the sum of its bonds.
 */
async function bondsFollow(tx: Tx, legs: Leg[], nowMs: number): Promise<void> {
  for (const leg of [...legs]) {
    const m = /^prover:(0x[0-9a-f]{40}):locked$/.exec(leg.account);
    if (!m || leg.amount === 0n) continue;
    const account = getAddress(m[1]!);
    if (leg.amount < 0n) {
      await shrinkBonds(tx, account, -leg.amount, nowMs);
      continue;
    }
    const back = await restoreBonds(tx, account, leg.amount, nowMs);
    if (back < leg.amount) {
      legs.push({ account: accounts.available(account), amount: leg.amount - back });
      leg.amount = back;
    }
  }
}

/** Most addresses whose locks one booking takes up front (lockAddressesOf). */
export const PRELOCK_MAX_ADDRESSES = 1000;

/**
 * Takes, up front and in the order bid writes take them, the locks a batch of escrow events
 * (a range booked, or logs undone) will want one event at a time: the bid lock of every address
 * the events name, then those addresses' earnings, available and reserved balance rows, in
 * account order. Taken event by event, in the chain's order (and earnings after available, as a
 * withdrawal's own legs would), they would cross a bid batch (which takes its provers' locks in
 * address order, then their rows), an auction's close (its bidders' available rows in order) or
 * a block's payout (earnings rows, then the winner's), and Postgres would break the cycle by
 * failing one of them. Sorted by the database, as the bid function sorts them (the same
 * collation); an address that is no prover costs one lock. Bid locks are advisory locks, each an
 * entry of Postgres's shared lock table until the commit (64 a connection by default): past
 * PRELOCK_MAX_ADDRESSES addresses (a range read while catching up) nothing is taken up front,
 * and each event takes its locks as it goes (rows before a bid lock would cross bid writes).
 */
export async function lockAddressesOf(tx: Tx, events: readonly unknown[]): Promise<void> {
  const found = new Set<string>();
  const visit = (v: unknown) => {
    if (typeof v === "string" && /^0x[0-9a-fA-F]{40}$/.test(v)) found.add(getAddress(v));
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === "object") Object.values(v).forEach(visit);
  };
  events.forEach(visit);
  if (found.size === 0) return;
  const provers = [...found];
  if (provers.length > PRELOCK_MAX_ADDRESSES) return;
  await tx.$queryRaw`
    SELECT pb_lock_prover(p)::text AS locked
    FROM (SELECT DISTINCT p FROM unnest(${provers}::text[]) AS p ORDER BY 1) AS s`;
  const rows = provers.flatMap((p) => [
    accounts.earnings(p),
    accounts.available(p),
    accounts.reserved(p),
  ]);
  await tx.$queryRaw`
    SELECT account FROM "AccountBalance" WHERE account = ANY(${rows}::text[])
    ORDER BY account FOR UPDATE`;
}

/** The prover's bid lock (pb_lock_prover), taken by bid writes before any balance row. */
async function lockProver(tx: Tx, prover: string): Promise<void> {
  await tx.$queryRaw`SELECT pb_lock_prover(${prover})::text AS locked`;
}
