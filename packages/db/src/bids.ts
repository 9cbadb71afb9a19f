// The market's bid writes as one SQL function (pb_submit_bids, see its migration): a batch of
// signed bids is checked and applied in arrival order against the auction's status, replays,
// the prover's previous bid on the auction and its available collateral, in one statement and
// one transaction (the relay's group commit). Each bid gets its own outcome; a refused bid
// leaves nothing behind.
import { accounts, applyMovement, type Tx } from "./ledger.ts";

export interface BidToWrite {
  /** The quote's EIP-712 digest. */
  id: string;
  blockNumber: number;
  /** Checksummed address, as stored. */
  prover: string;
  validUntilSlot: bigint;
  bondAmount: bigint;
  basisPointFee: number;
  signature: string;
}

export type BidWriteOutcome =
  | { outcome: "accepted" | "replay" | "AUCTION_NOT_FOUND" | "AUCTION_CLOSED" | "BID_SUPERSEDED" }
  | { outcome: "INSUFFICIENT_COLLATERAL"; shortBy: bigint };

/** Writes a batch of bids; one outcome per bid, in the bids' order. */
export async function submitBidBatch(
  db: Tx,
  bids: BidToWrite[],
  nowMs: number,
): Promise<BidWriteOutcome[]> {
  // One JSON parameter: far cheaper for the client to send than nine arrays. Numbers that may
  // exceed 2^53 go as decimal strings.
  const tuples = bids.map((b) => [
    b.id,
    b.blockNumber,
    b.prover,
    b.validUntilSlot.toString(),
    b.bondAmount.toString(),
    b.basisPointFee,
    b.signature.toLowerCase(),
    accounts.available(b.prover),
    accounts.reserved(b.prover),
  ]);
  const rows = await db.$queryRaw<{ idx: number; outcome: string; short_by: string | null }[]>`
    SELECT idx, outcome, short_by::text AS short_by
    FROM pb_submit_bids(${JSON.stringify(tuples)}::jsonb, ${BigInt(nowMs)}::bigint)`;
  const out: (BidWriteOutcome | undefined)[] = Array.from({ length: bids.length });
  for (const r of rows) {
    out[Number(r.idx) - 1] =
      r.outcome === "INSUFFICIENT_COLLATERAL"
        ? { outcome: r.outcome, shortBy: BigInt(r.short_by ?? "0") }
        : ({ outcome: r.outcome } as BidWriteOutcome);
  }
  if (rows.length !== bids.length || out.some((o) => o === undefined)) {
    throw new Error(`pb_submit_bids returned ${rows.length} outcomes for ${bids.length} bids`);
  }
  return out as BidWriteOutcome[];
}

/**
 * Ends every live bid of a prover as `unfunded` and releases their reservations, in the caller's
 * transaction (COLLATERAL=chain: the L1 took back collateral those bids relied on, by a
 * withdrawal or a reorg; or a penalty needs that collateral: chargePenalty). Not `cancelled`:
 * that is the prover's own signed cancellation, which a bid ended this way never used. Takes the prover's bid lock first, as bid writes do, then its
 * available balance row, which an auction's close locks before it reads the live bids (so the
 * two never both end a bid); a bid the close has already ended is not live. `prover` is
 * checksummed, as bids store it. Returns the bids ended.
 */
export async function cancelLiveBids(tx: Tx, prover: string, nowMs: number): Promise<string[]> {
  await tx.$queryRaw`SELECT pb_lock_prover(${prover})::text AS locked`;
  await tx.$queryRaw`
    SELECT account FROM "AccountBalance" WHERE account = ${accounts.available(prover)} FOR UPDATE`;
  const rows = await tx.$queryRaw<{ id: string; bond: string; blockNumber: number }[]>`
    UPDATE "Bid" SET status = 'unfunded'
    WHERE prover = ${prover} AND status = 'active'
    RETURNING id, "bondAmount"::text AS bond, "blockNumber"`;
  for (const r of rows) {
    await applyMovement(tx, {
      kind: "release",
      legs: [
        { account: accounts.reserved(prover), amount: -BigInt(r.bond) },
        { account: accounts.available(prover), amount: BigInt(r.bond) },
      ],
      blockNumber: r.blockNumber,
      ref: r.id,
      nowMs,
    });
  }
  return rows.map((r) => r.id);
}
