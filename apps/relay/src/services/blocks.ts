// Public block views: stage history, tree progress, root proof, payouts, and accepted proofs.
import { DomainError, type JobType, stages as stageOrder } from "@prover-boost/core";
import { blockTxAt } from "@prover-boost/db";
import type { Hex } from "viem";
import type { RelayContext } from "../context.ts";

/** One row of getBlockView's query: the block, its jobs counted by status, and its payouts. */
interface BlockViewRow {
  number: number;
  stage: string;
  stages: Record<string, number>;
  winner: string | null;
  feeBps: number | null;
  rootProof: string | null;
  /** The auction's proof deadline plus the outages credited to the block (null: no auction). */
  proofDeadline: bigint | null;
  /** An outage of the proof fabric is open: the deadline waits for it to end. */
  deadlinePaused: boolean;
  jobsTotal: number;
  counts: Record<string, number> | null;
  payouts: { recipient: string; role: string; amount: string }[];
}

/**
 * A block's public view, read in one statement (a status poll is frequent: one round trip, and
 * one consistent snapshot, rather than three queries).
 */
export async function getBlockView(ctx: RelayContext, number: number) {
  const rows = await ctx.prisma.$queryRaw<BlockViewRow[]>`
    SELECT b."number", b."stage", b."stages", b."winner", b."feeBps", b."rootProof", b."jobsTotal",
      (SELECT a."proofDeadline" FROM "Auction" a WHERE a."blockNumber" = b."number")
        + b."fabricDownMs" AS "proofDeadline",
      b."fabricDownSince" IS NOT NULL AS "deadlinePaused",
      (SELECT json_object_agg(c."status", c."n")
         FROM (SELECT j."status", count(*)::int AS "n" FROM "ProofJob" j
               WHERE j."blockNumber" = b."number" GROUP BY j."status") c) AS "counts",
      (SELECT coalesce(json_agg(json_build_object(
                 'recipient', p."recipient", 'role', p."role", 'amount', p."amount"::text)
               ORDER BY p."role", p."recipient"), '[]'::json)
         FROM "Payout" p WHERE p."blockNumber" = b."number") AS "payouts"
    FROM "Block" b WHERE b."number" = ${number}`;
  const block = rows[0];
  if (!block) throw new DomainError("BLOCK_NOT_FOUND", `no block ${number}`);
  const counts = block.counts ?? {};
  return {
    number: block.number,
    stage: block.stage,
    stages: inStageOrder(block.stages),
    winner: block.winner,
    feeBps: block.feeBps,
    tree: {
      total: block.jobsTotal,
      proven: counts.proven ?? 0,
      leased: counts.leased ?? 0,
      queued: counts.queued ?? 0,
    },
    rootProof: block.rootProof,
    proofDeadline: block.proofDeadline === null ? null : Number(block.proofDeadline),
    deadlinePaused: block.deadlinePaused,
    payouts: block.payouts.map((p) => ({
      recipient: p.recipient,
      role: p.role,
      amount: p.amount,
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
