// Public block views: stage history, tree progress, root proof, payouts.
import { DomainError, stages as stageOrder } from "@prover-boost/core";
import type { RelayContext } from "../context.ts";

export async function getBlockView(ctx: RelayContext, number: number) {
  const block = await ctx.prisma.block.findUnique({ where: { number } });
  if (!block) throw new DomainError("BLOCK_NOT_FOUND", `no block ${number}`);
  const counts = await ctx.prisma.proofJob.groupBy({
    by: ["status"],
    where: { blockNumber: number },
    _count: { _all: true },
  });
  const by = new Map(counts.map((c) => [c.status, c._count._all]));
  const payouts = await ctx.prisma.payout.findMany({
    where: { blockNumber: number },
    orderBy: [{ role: "asc" }, { recipient: "asc" }],
  });
  return {
    number: block.number,
    stage: block.stage,
    stages: inStageOrder(block.stages as Record<string, number>),
    winner: block.winner,
    feeBps: block.feeBps,
    tree: {
      total: block.jobsTotal,
      proven: by.get("proven") ?? 0,
      leased: by.get("leased") ?? 0,
      queued: by.get("queued") ?? 0,
    },
    rootProof: block.rootProof,
    payouts: payouts.map((p) => ({
      recipient: p.recipient,
      role: p.role,
      amount: p.amount.toFixed(),
    })),
  };
}

export async function getTreeView(ctx: RelayContext, number: number) {
  const block = await ctx.prisma.block.findUnique({ where: { number }, select: { number: true } });
  if (!block) throw new DomainError("BLOCK_NOT_FOUND", `no block ${number}`);
  const jobs = await ctx.prisma.proofJob.findMany({
    where: { blockNumber: number },
    orderBy: [{ level: "asc" }, { index: "asc" }],
  });
  return {
    nodes: jobs.map((j) => ({
      id: j.id,
      type: j.type,
      level: j.level,
      index: j.index,
      status: j.status,
      worker: j.workerId,
      children: j.childIds,
    })),
  };
}

/** JSONB does not keep key order; present stages in lifecycle order. */
function inStageOrder(times: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const stage of stageOrder) if (times[stage] !== undefined) out[stage] = times[stage];
  return out;
}
