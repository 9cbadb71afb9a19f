// What a tick has to do, read in one query. Most ticks find nothing new: no auction due, no
// block to fan out, pay or slash, only the blocks being proven to check against the fabric. Each
// duty used to run its own query every tick to find that out; now one statement reads every block
// a duty could act on, with its auction's deadline, and whether an auction is due, and a duty
// runs its own (locking, re-checking) queries only when this view says it has work. What changes
// after the read is seen by the next tick, as before.
import { STAGE } from "@prover-boost/core";
import type { AggregatorContext } from "./context.ts";

/** A block being proven, as the fabric keeper, the reconciler and the deadline check need it. */
export interface ProvingBlock {
  number: number;
  stage: string;
  jobsTotal: number;
  jobsProven: number;
  fabricJobs: number | null;
  fabricDownSince: bigint | null;
  /** The auction's proofDeadline plus the block's fabric outages (deadlines.ts). */
  deadline: bigint;
  /** When it moved to open proving (null while the winner proves it). */
  openedAt: bigint | null;
  /** The fabric outages credited to the block (Block.fabricDownMs). */
  fabricDownMs: bigint;
}

export interface TickView {
  /** Some open auction's bidding has closed. */
  auctionsDue: boolean;
  /** Some block is committed or unclaimed: its tree is to be fanned out. */
  toFanOut: boolean;
  /** The blocks being proven (proving, open_proving), by number. */
  proving: ProvingBlock[];
  /** Some block is proven: to be paid. */
  toPay: boolean;
}

/** A row of the view's query: a block (no deadline on a due auction's marker row). */
type Row = Omit<ProvingBlock, "deadline" | "fabricDownMs"> & {
  deadline: bigint | null;
  fabricDownMs: bigint | null;
};

/** The marker row of a due auction (not a block stage). */
const DUE = "auction_due";

export async function readTickView(ctx: AggregatorContext, now: number): Promise<TickView> {
  const rows = await ctx.prisma.$queryRaw<Row[]>`
    (SELECT b.number, b.stage, b."jobsTotal", b."jobsProven", b."fabricJobs", b."fabricDownSince",
        a."proofDeadline" + b."fabricDownMs" AS deadline,
        (b.stages->>${STAGE.open_proving})::bigint AS "openedAt", b."fabricDownMs"
      FROM "Block" b JOIN "Auction" a ON a."blockNumber" = b.number
      WHERE b.stage IN (${STAGE.committed}, ${STAGE.unclaimed}, ${STAGE.proving},
        ${STAGE.open_proving}, ${STAGE.proven}))
    UNION ALL
    (SELECT a."blockNumber", ${DUE}, 0, 0, NULL, NULL, NULL, NULL, NULL FROM "Auction" a
      WHERE a.status = 'open' AND a."biddingClosesAt" <= ${BigInt(now)}::bigint LIMIT 1)`;
  const view: TickView = { auctionsDue: false, toFanOut: false, proving: [], toPay: false };
  for (const r of rows) {
    if (r.stage === DUE) view.auctionsDue = true;
    else if (r.stage === STAGE.committed || r.stage === STAGE.unclaimed) view.toFanOut = true;
    else if (r.stage === STAGE.proven) view.toPay = true;
    else {
      view.proving.push({
        number: r.number,
        stage: r.stage,
        jobsTotal: r.jobsTotal,
        jobsProven: r.jobsProven,
        fabricJobs: r.fabricJobs,
        fabricDownSince: r.fabricDownSince,
        deadline: r.deadline ?? 0n,
        openedAt: r.openedAt,
        fabricDownMs: r.fabricDownMs ?? 0n,
      });
    }
  }
  view.proving.sort((x, y) => x.number - y.number);
  return view;
}

/** Whether enforceDeadlines has a block to slash: proving, no outage open, past its deadline. */
export function anyPastDeadline(view: TickView, now: number): boolean {
  return view.proving.some(
    (b) => b.stage === STAGE.proving && b.fabricDownSince === null && b.deadline <= BigInt(now),
  );
}
