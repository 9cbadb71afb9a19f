// Reconciling Postgres with BullMQ. A relay completes a job in BullMQ (where the lease is checked)
// before recording the proof in Postgres; if it died in between, the proof and its credit live
// only in the job's BullMQ result. This copies such results into Postgres, idempotently.
import { rootJobTypes } from "@prover-boost/core";
import { recordProof } from "@prover-boost/db";
import type { AggregatorContext } from "./context.ts";

export async function reconcileProvingBlocks(ctx: AggregatorContext): Promise<number> {
  const blocks = await ctx.prisma.block.findMany({
    where: { stage: { in: ["proving", "open_proving"] } },
    select: { number: true, jobsProven: true },
  });
  let repaired = 0;
  for (const block of blocks) {
    const counts = await ctx.fabric.counts(block.number);
    const completed = Object.values(counts).reduce((s, c) => s + (c.completed ?? 0), 0);
    if (completed <= block.jobsProven) continue;
    const proven = new Set(
      (
        await ctx.prisma.proofJob.findMany({
          where: { blockNumber: block.number, status: "proven" },
          select: { id: true },
        })
      ).map((j) => j.id),
    );
    const jobs = await ctx.prisma.proofJob.findMany({
      where: { blockNumber: block.number },
      select: { id: true, type: true },
    });
    const typeOf = new Map(jobs.map((j) => [j.id, j.type]));
    for (const { id, result } of await ctx.fabric.completed(block.number)) {
      if (proven.has(id)) continue;
      const type = typeOf.get(id);
      if (!type) continue;
      const isRoot = (rootJobTypes as readonly string[]).includes(type);
      if (await recordProof(ctx.prisma, id, block.number, isRoot, result, ctx.now())) repaired++;
    }
  }
  if (repaired > 0)
    ctx.log.warn({ repaired }, "recorded proofs that were completed but not recorded");
  return repaired;
}
