// Public block views: stage history, tree progress, root proof, payouts, and accepted proofs.
import { DomainError, type JobType, stages as stageOrder } from "@prover-boost/core";
import { blockTxAt } from "@prover-boost/db";
import type { Hex } from "viem";
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
  const [jobs, lapses] = await Promise.all([
    ctx.prisma.proofJob.findMany({
      where: { blockNumber: number },
      orderBy: [{ level: "asc" }, { index: "asc" }],
      select: {
        id: true,
        type: true,
        level: true,
        index: true,
        status: true,
        workerId: true,
        childIds: true,
        operator: true,
        provenAt: true,
      },
    }),
    ctx.prisma.penalty.groupBy({
      by: ["jobId"],
      where: { blockNumber: number, kind: "withholding" },
      _count: { _all: true },
    }),
  ]);
  const lapsesOf = new Map(lapses.map((l) => [l.jobId, l._count._all]));
  return {
    nodes: jobs.map((j) => ({
      id: j.id,
      type: j.type,
      level: j.level,
      index: j.index,
      status: j.status,
      worker: j.workerId,
      children: j.childIds,
      operator: j.operator as `0x${string}` | null,
      provenAt: j.provenAt === null ? null : Number(j.provenAt),
      lapses: lapsesOf.get(j.id) ?? 0,
    })),
  };
}

/** JSONB does not keep key order; present stages in lifecycle order. */
function inStageOrder(times: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const stage of stageOrder) if (times[stage] !== undefined) out[stage] = times[stage];
  return out;
}

/**
 * An accepted proof of one node, with what verifying it needs: real proofs come from the proof
 * store; a simulated proof is its job's recorded proof (no public inputs, no verification key).
 */
export async function getProofView(ctx: RelayContext, blockNumber: number, jobId: string) {
  const job = await ctx.prisma.proofJob.findUnique({
    where: { id: jobId },
    select: { blockNumber: true, type: true, level: true, index: true, status: true, proof: true },
  });
  const notFound = () =>
    new DomainError("PROOF_NOT_FOUND", `no accepted proof of job ${jobId} in block ${blockNumber}`);
  if (!job || job.blockNumber !== blockNumber) throw notFound();
  const auction = await ctx.prisma.auction.findUnique({
    where: { blockNumber },
    select: { proofSystem: true },
  });
  const system = ctx.verifiers.of(auction?.proofSystem);
  const type = job.type as JobType;
  const head = { blockNumber, jobId, type, level: job.level, index: job.index };
  if (system.name === "sim") {
    if (job.status !== "proven" || !job.proof) throw notFound();
    const proof = job.proof as Hex;
    return {
      ...head,
      proofSystem: system.name,
      circuit: system.circuitOf(type),
      proof,
      publicInputs: [],
      output: proof,
      verificationKey: await system.verificationKey(type),
    };
  }
  if (job.status !== "proven") throw notFound();
  const stored = await ctx.proofStore.get(jobId);
  if (!stored) throw notFound();
  return {
    ...head,
    proofSystem: system.name,
    circuit: stored.circuit,
    proof: stored.proof,
    publicInputs: stored.publicInputs,
    output: stored.output,
    verificationKey: await system.verificationKey(type),
  };
}

/** A transaction's bytes by its position in the block, as the sequencer uploaded them. */
export async function getTxView(ctx: RelayContext, blockNumber: number, index: number) {
  const data = await blockTxAt(ctx.prisma, blockNumber, index);
  if (!data) {
    throw new DomainError(
      "TX_NOT_FOUND",
      `block ${blockNumber} has no uploaded transaction at position ${index}`,
    );
  }
  return { blockNumber, index, hash: data.hash, data: data.data };
}
