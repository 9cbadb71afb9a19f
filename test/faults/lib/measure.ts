// The columns of the fault table, measured in Postgres against what the market promised:
//   accepted bids lost      bids answered 202 whose id is not in the Bid table
//   accepted proofs lost    results answered 200 whose job is not recorded proven
//   double payouts          a block paid more than once (two payout movements, a recipient paid
//                           twice in one role, payouts not summing to the block reward) plus
//                           every breach of the ledger's invariants (a movement not summing to
//                           zero, a running balance differing from its journal, a guarded
//                           account below zero)
//   honest operators penalized
//                           every penalty (withholding, invalid proof, slash) except withholding
//                           by a worker whose process the scenario killed (the operator's crash);
//                           a disconnect, or an outage of a relay, Redis or Postgres, is ours
//   recovered after         from the end of the fault until the affected block is paid
import type { World } from "./world.ts";

export interface Columns {
  bidsLost: number;
  proofsLost: number;
  doublePayouts: number;
  honestPenalized: number;
  /** ms from the end of the fault to `paid`; null when the block was not paid in time. */
  recoveredAfterMs: number | null;
  /** Shown instead of the time when the scenario has no single fault to recover from. */
  recoveredLabel?: string;
  notes: string[];
  /** Resource figures that must stay flat (the soak). */
  resources?: { metric: string; first: number; last: number; flat: boolean }[];
}

export async function measure(
  world: World,
  blocks: number[],
  recoveredAfterMs: number | null,
): Promise<Columns> {
  const prisma = world.db.prisma;
  const notes: string[] = [];
  const bidIds = [...world.acceptedBids];
  const found = await prisma.bid.count({ where: { id: { in: bidIds } } });
  const jobIds = [...world.acceptedProofs];
  const provenRows = await prisma.proofJob.count({
    where: { id: { in: jobIds }, status: "proven" },
  });
  notes.push(`${bidIds.length} bids accepted, ${jobIds.length} proofs accepted`);

  let doubles = 0;
  for (const n of blocks) {
    const payoutMovements = await prisma.ledgerEntry.groupBy({
      by: ["movementId"],
      where: { blockNumber: n, kind: "payout" },
    });
    const rows = await prisma.payout.findMany({ where: { blockNumber: n } });
    const seen = new Set<string>();
    let dupes = 0;
    for (const r of rows) {
      const key = `${r.recipient.toLowerCase()} ${r.role}`;
      if (seen.has(key)) dupes++;
      seen.add(key);
    }
    const extra = Math.max(0, payoutMovements.length - 1) + dupes;
    if (rows.length > 0) {
      const auction = await prisma.auction.findUniqueOrThrow({ where: { blockNumber: n } });
      const paid = rows.reduce((s, r) => s + BigInt(r.amount.toFixed()), 0n);
      if (paid !== BigInt(auction.blockReward.toFixed())) {
        doubles++;
        notes.push(`block ${n} paid ${paid}, reward ${auction.blockReward.toFixed()}`);
      }
    }
    if (extra > 0) notes.push(`block ${n}: ${extra} extra payouts`);
    doubles += extra;
  }
  const ledger = await ledgerBreaches(world);
  if (ledger > 0) notes.push(`${ledger} ledger invariant breaches`);
  doubles += ledger;

  const penalties = await prisma.penalty.findMany();
  const killed = [...world.killedPools].map((prefix) => `${prefix}-`);
  const honest = penalties.filter(
    (p) => !(p.kind === "withholding" && killed.some((k) => p.workerId?.startsWith(k))),
  );
  const excused = penalties.length - honest.length;
  if (excused > 0) notes.push(`${excused} lapses of killed workers (the operator's own)`);
  if (honest.length > 0) {
    const kinds = new Map<string, number>();
    for (const p of honest) kinds.set(p.kind, (kinds.get(p.kind) ?? 0) + 1);
    notes.push(`penalties: ${[...kinds].map(([k, c]) => `${c} ${k}`).join(", ")}`);
    const shown = honest
      .slice(0, 6)
      .map((p) => `${p.kind} ${p.workerId ?? p.operator} ${p.jobId ?? ""}`);
    notes.push(`penalized: ${shown.join(", ")}`);
  }
  if (world.lostJobs.length > 0) {
    notes.push(
      `workers lost ${world.lostJobs.length} leases (${world.lostJobs.slice(0, 3).join("; ")})`,
    );
  }
  return {
    bidsLost: bidIds.length - found,
    proofsLost: jobIds.length - provenRows,
    doublePayouts: doubles,
    honestPenalized: honest.length,
    recoveredAfterMs,
    notes,
  };
}

/** Breaches of the ledger's invariants (see packages/db/src/ledger.ts). */
async function ledgerBreaches(world: World): Promise<number> {
  const prisma = world.db.prisma;
  const unbalanced = await prisma.$queryRaw<{ n: bigint }[]>`
    SELECT COUNT(*) AS n FROM (SELECT "movementId" FROM "LedgerEntry"
    GROUP BY "movementId" HAVING SUM(amount) <> 0) m`;
  const drift = await prisma.$queryRaw<{ n: bigint }[]>`
    SELECT COUNT(*) AS n FROM "AccountBalance" b
    FULL OUTER JOIN (SELECT account, SUM(amount) AS total FROM "LedgerEntry" GROUP BY account) j
      ON j.account = b.account
    WHERE COALESCE(b.balance, 0) <> COALESCE(j.total, 0)`;
  const negative = await prisma.$queryRaw<{ n: bigint }[]>`
    SELECT COUNT(*) AS n FROM "AccountBalance" WHERE balance < 0 AND account NOT LIKE 'external:%'`;
  return Number(unbalanced[0]!.n) + Number(drift[0]!.n) + Number(negative[0]!.n);
}

/**
 * Waits (up to `timeoutMs`) until block `n` is paid; returns the time from the end of the fault
 * to its `paid` stage time (0 if it was paid before the fault ended), or null if not paid.
 */
export async function recoveredAfter(
  world: World,
  n: number,
  timeoutMs: number,
): Promise<number | null> {
  try {
    const b = await world.waitStage(n, ["paid"], timeoutMs);
    return Math.max(0, (b.stages.paid ?? Date.now()) - world.faultEndedAt);
  } catch {
    return null;
  }
}
