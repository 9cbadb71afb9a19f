// The one writer of penalty rows: an invalid proof (nothing taken), withholding a proof (a fixed
// amount taken from the operator), and a missed proof deadline (the winner's bond slashed). The
// ledger movement that takes the amount, if any, is the caller's, in the same transaction, or
// `chargePenalty`'s for the penalties that burn up to a fixed amount of free collateral.
import { randomUUID } from "node:crypto";
import { cancelLiveBids } from "./bids.ts";
import { accounts, type Tx, takeUpTo } from "./ledger.ts";

export type PenaltyKind = "invalid_proof" | "withholding" | "slash";

export interface PenaltyInput {
  id: string;
  kind: PenaltyKind;
  blockNumber: number | null;
  operator: string;
  /** The job and worker it was charged for (none for a block's slash). */
  jobId?: string | null;
  workerId?: string | null;
  /** Wei taken (0 for a penalty that only counts). */
  amount: bigint;
  nowMs: number;
}

/** Returns the unawaited query so it can join a batch transaction. */
export function recordPenalty(db: Tx, p: PenaltyInput) {
  return db.penalty.create({
    data: {
      id: p.id,
      blockNumber: p.blockNumber,
      jobId: p.jobId ?? null,
      operator: p.operator,
      workerId: p.workerId ?? null,
      kind: p.kind,
      amount: p.amount.toString(),
      createdAt: BigInt(p.nowMs),
    },
  });
}

/**
 * Burns up to `maxWei` of the operator's free collateral (what there is, never below zero) and
 * records the penalty with the amount taken, in the caller's transaction. Returns that amount.
 *
 * Free collateral includes what the operator's live bids reserve: when its available balance
 * falls short of `maxWei`, those bids end (`unfunded`, their reservations released, as when a
 * withdrawal takes their collateral) before the burn. Else collateral parked in sealed bids would
 * shelter an operator from its penalties, and a penalty's amount, which is public, would be the
 * operator's deposits less its locked bonds and its sealed bids' bonds: a rival could read the
 * sum of those bonds off it. Taken so, the amount depends on public figures only.
 *
 * With `onChain` (COLLATERAL=chain) the escrow holds the collateral, so the same transaction
 * also owes it a `penalty` settlement: the settler sends `penalize(operator, taken, ref)` with
 * the penalty's id as its ref, and the escrow burns it once.
 */
export async function chargePenalty(
  tx: Tx,
  p: Omit<PenaltyInput, "id" | "amount"> & { maxWei: bigint; onChain?: boolean },
): Promise<bigint> {
  // The prover's market lock before its balance rows, as bid writes and the escrow index take
  // them: a penalty and a withdrawal being booked for the same prover wait for each other
  // instead of locking the prover's rows and burn in opposite orders.
  await tx.$queryRaw`SELECT pb_lock_prover(${p.operator})::text AS locked`;
  // Short of the cap, the live bids end (under the balance rows' locks, `burn` first, as every
  // penalty takes them; cancelLiveBids then takes the bids, as every writer that ends them).
  const taken = await takeUpTo(
    tx,
    "penalty",
    accounts.available(p.operator),
    accounts.burn,
    p.maxWei,
    { nowMs: p.nowMs, blockNumber: p.blockNumber, ref: p.jobId ?? null },
    () => cancelLiveBids(tx, p.operator, p.nowMs),
  );
  const id = randomUUID();
  const { onChain, maxWei: _max, ...input } = p;
  await recordPenalty(tx, { ...input, id, amount: taken });
  if (onChain && taken > 0n) {
    const now = BigInt(p.nowMs);
    await tx.settlement.create({
      data: {
        key: `penalty:${id}`,
        kind: "penalty",
        // A penalty outside any block (none today) is filed under block 0.
        blockNumber: p.blockNumber ?? 0,
        args: { prover: p.operator, amount: taken.toString(), penaltyId: id },
        nextAttemptAt: now,
        createdAt: now,
        updatedAt: now,
      },
    });
  }
  return taken;
}
