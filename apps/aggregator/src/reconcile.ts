// Reconciling Postgres with BullMQ. A relay completes a job in BullMQ (where the lease is checked)
// before recording the proof in Postgres; if it died in between, the proof and its credit live
// only in the job's BullMQ result. This copies such results into Postgres, idempotently.
//
// Every live relay records its proofs within a few milliseconds of completing them, so during
// proving BullMQ's completed count is almost always a little ahead of Postgres. Comparing the two
// at one instant would send every tick down the repair path for jobs that are being recorded
// anyway. So a block is repaired only when Postgres is still behind the completed count seen
// REPAIR_AFTER_MS ago (and at least a tick ago): a proof left unrecorded that long. A loaded
// relay's group-committed marks can trail its completions by more than a tick, and a repair
// then raced the relay, reading every unproven row and recording proofs the relay was about to
// record. The repair compares ids and reads back only the results Postgres lacks.
import { PROVING_STAGES, rootJobTypes } from "@prover-boost/core";
import { recordProof } from "@prover-boost/db";
import type { AggregatorContext } from "./context.ts";

/** What the reconciler reads of a block being proven. */
export interface ReconciledBlock {
  number: number;
  jobsProven: number;
  jobsTotal: number;
  fabricJobs: number | null;
}

/** How long a proof completed in BullMQ may stay unrecorded before the reconciler records it. */
export const REPAIR_AFTER_MS = 2000;

export class ProofReconciler {
  /**
   * Per block being proven: how many of its jobs BullMQ had completed at earlier ticks (monotonic
   * clock, oldest first), back to the newest sample at least REPAIR_AFTER_MS old.
   */
  private readonly samples = new Map<number, { at: number; completed: number }[]>();

  constructor(private readonly ctx: AggregatorContext) {}

  /**
   * One pass over the blocks being proven; returns how many proofs it recorded. `known`: the
   * blocks as the caller read them this tick, and their completed counts in BullMQ as the fabric
   * keeper read them (a block missing from `completed` is skipped this tick); both are read here
   * when not given.
   */
  async run(known?: {
    blocks: readonly ReconciledBlock[];
    completed: ReadonlyMap<number, number>;
  }): Promise<number> {
    const { ctx } = this;
    const blocks =
      known?.blocks ??
      (await ctx.prisma.block.findMany({
        where: { stage: { in: [...PROVING_STAGES] } },
        select: { number: true, jobsProven: true, jobsTotal: true, fabricJobs: true },
      }));
    const active = new Set(blocks.map((b) => b.number));
    for (const n of this.samples.keys()) if (!active.has(n)) this.samples.delete(n);
    const at = performance.now();
    let repaired = 0;
    for (const block of blocks) {
      const completed = known
        ? known.completed.get(block.number)
        : (await ctx.fabric.treeCounts(block.number)).completed;
      if (completed === undefined) {
        this.samples.delete(block.number);
        continue;
      }
      const before = this.completedAgo(block.number, at);
      this.samples.get(block.number)?.push({ at, completed }) ??
        this.samples.set(block.number, [{ at, completed }]);
      // A tree rebuilt after Redis lost it holds only the nodes unproven then (rebuild.ts).
      const provenOutside = block.jobsTotal - (block.fabricJobs ?? block.jobsTotal);
      const recorded = block.jobsProven - provenOutside;
      if (before === undefined || recorded >= Math.min(before, completed)) continue;
      repaired += await this.repair(block.number);
    }
    if (repaired > 0) {
      ctx.log.warn({ repaired }, "recorded proofs that were completed but not recorded");
    }
    return repaired;
  }

  /** The completed count sampled REPAIR_AFTER_MS or more before `at`; older samples dropped. */
  private completedAgo(blockNumber: number, at: number): number | undefined {
    const list = this.samples.get(blockNumber);
    if (!list) return undefined;
    let i = -1;
    while (i + 1 < list.length && list[i + 1]!.at <= at - REPAIR_AFTER_MS) i++;
    if (i > 0) list.splice(0, i);
    return i >= 0 ? list[0]!.completed : undefined;
  }

  private async repair(blockNumber: number): Promise<number> {
    return recordCompletedProofs(this.ctx, blockNumber);
  }
}

/**
 * Records the proofs of a block that BullMQ completed and Postgres lacks; returns how many it
 * recorded (each at most once, whoever else records it meanwhile). Also run before a block is
 * judged at its proof deadline (deadlines.ts): a proof accepted in time is never judged missing.
 */
export async function recordCompletedProofs(
  ctx: AggregatorContext,
  blockNumber: number,
): Promise<number> {
  // Only the rows not proven yet: late in a tree they are few, and the repair may run often
  // while a loaded relay's group-committed marks trail its completions.
  const rows = await ctx.prisma.proofJob.findMany({
    where: { blockNumber, status: { not: "proven" } },
    select: { id: true, type: true },
  });
  if (rows.length === 0) return 0;
  const unrecorded = new Set(rows.map((r) => r.id));
  const typeOf = new Map(rows.map((r) => [r.id, r.type]));
  let repaired = 0;
  for (const { id, result } of await ctx.fabric.completed(blockNumber, unrecorded)) {
    const isRoot = (rootJobTypes as readonly string[]).includes(typeOf.get(id)!);
    if (await recordProof(ctx.prisma, id, blockNumber, isRoot, result, ctx.now())) repaired++;
  }
  return repaired;
}
