// Reconciling Postgres with BullMQ. A relay completes a job in BullMQ (where the lease is checked)
// before recording the proof in Postgres; if it died in between, the proof and its credit live
// only in the job's BullMQ result. This copies such results into Postgres, idempotently.
//
// Every live relay records its proofs within a few milliseconds of completing them, so during
// proving BullMQ's completed count is almost always a little ahead of Postgres. Comparing the two
// at one instant would send every tick down the repair path for jobs that are being recorded
// anyway. So a block is repaired only when Postgres is still behind the completed count seen at
// the previous tick: a proof left unrecorded for a whole tick. The repair then compares ids and
// reads back only the results Postgres lacks.
import { PROVING_STAGES, rootJobTypes } from "@prover-boost/core";
import { recordProof } from "@prover-boost/db";
import type { AggregatorContext } from "./context.ts";

export class ProofReconciler {
  /** Per block being proven: how many of its jobs BullMQ had completed at the previous tick. */
  private readonly completedBefore = new Map<number, number>();

  constructor(private readonly ctx: AggregatorContext) {}

  /** One pass over the blocks being proven; returns how many proofs it recorded. */
  async run(): Promise<number> {
    const { ctx } = this;
    const blocks = await ctx.prisma.block.findMany({
      where: { stage: { in: [...PROVING_STAGES] } },
      select: { number: true, jobsProven: true, jobsTotal: true, fabricJobs: true },
    });
    const active = new Set(blocks.map((b) => b.number));
    for (const n of this.completedBefore.keys()) if (!active.has(n)) this.completedBefore.delete(n);
    let repaired = 0;
    for (const block of blocks) {
      const counts = await ctx.fabric.counts(block.number);
      const completed = Object.values(counts).reduce((s, c) => s + (c.completed ?? 0), 0);
      const before = this.completedBefore.get(block.number);
      this.completedBefore.set(block.number, completed);
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

  private async repair(blockNumber: number): Promise<number> {
    const { ctx } = this;
    // Only the rows not proven yet: late in a tree they are few, and the repair may run often
    // while a loaded relay's group-committed marks trail its completions.
    const rows = await ctx.prisma.proofJob.findMany({
      where: { blockNumber, status: { not: "proven" } },
      select: { id: true, type: true },
    });
    const unrecorded = new Set(rows.map((r) => r.id));
    const typeOf = new Map(rows.map((r) => [r.id, r.type]));
    let repaired = 0;
    for (const { id, result } of await ctx.fabric.completed(blockNumber, unrecorded)) {
      const isRoot = (rootJobTypes as readonly string[]).includes(typeOf.get(id)!);
      if (await recordProof(ctx.prisma, id, blockNumber, isRoot, result, ctx.now())) repaired++;
    }
    return repaired;
  }
}
