// Fanning a closed auction's block out as its proof tree: one ProofJob row per node (history,
// proofs, credit) and one BullMQ flow. Both steps are idempotent, so a crash between them is
// repaired by the next tick; the stage moves only after both.
//
// The winner cannot lease a job before its tree is out, so the time from the bidding close to
// the fan-out (an aggregator stopped or slow at the close) is credited to the block's deadline
// like a fabric outage (Block.fabricDownMs, see rebuild.ts): the winner keeps its whole proving
// window. An outage opened on the committed block meanwhile is counted only from the fan-out on,
// so no time is credited twice.

import { nodePriority, planTree, STAGE } from "@prover-boost/core";
import { insertProofJobs, moveStage } from "@prover-boost/db";
import { jobId, treeQueueKinds } from "@prover-boost/queue";
import { BlockRetries } from "./block-retries.ts";
import type { AggregatorContext } from "./context.ts";

interface ClosedBlock {
  number: number;
  stage: string;
  txCount: number;
  proofSystem: string;
  biddingClosesAt: bigint;
  txs: string;
}

/**
 * `retries`: a block whose fan-out failed (an error on its own data, say) waits a while, and the
 * passes meanwhile go on to the blocks after it.
 */
export async function fanOutClosedBlocks(
  ctx: AggregatorContext,
  retries: BlockRetries = new BlockRetries(),
): Promise<number> {
  const skip = retries.waiting(ctx.now());
  // The transactions come as one JSON text: parsing Postgres's array text of thousands of
  // hashes cost far more than the rest of this read.
  const blocks = await ctx.prisma.$queryRaw<ClosedBlock[]>`
    SELECT b.number, b.stage, a."txCount", a."proofSystem", a."biddingClosesAt",
      array_to_json(a.txs)::text AS txs
    FROM "Block" b JOIN "Auction" a ON a."blockNumber" = b.number
    WHERE b.stage IN (${STAGE.committed}, ${STAGE.unclaimed})
      AND NOT (b.number = ANY(${skip}::integer[]))
    ORDER BY b.number LIMIT 20`;
  for (const block of blocks) {
    try {
      await fanOut(ctx, block);
      retries.done(block.number);
    } catch (err) {
      const retryInMs = retries.failed(block.number, ctx.now());
      ctx.log.error({ err, blockNumber: block.number, retryInMs }, "fan-out failed");
    }
  }
  return blocks.length;
}

async function fanOut(ctx: AggregatorContext, block: ClosedBlock): Promise<void> {
  const plan = planTree(block.txCount);
  // Relays open the block's queues while its tree is written, ready for its first leases.
  const kinds = treeQueueKinds(block.txCount);
  await ctx.fabric.announceUpcoming(block.number, kinds).catch(() => {});
  const txs = JSON.parse(block.txs) as string[];
  const idOf = (key: string) => {
    const [level, index] = key.split(":").map(Number);
    return jobId(block.number, level!, index!);
  };
  // One statement for the whole tree (thousands of rows): no per-row query building.
  await insertProofJobs(
    ctx.prisma,
    plan.nodes.map((n) => ({
      id: jobId(block.number, n.level, n.index),
      blockNumber: block.number,
      type: n.type,
      level: n.level,
      index: n.index,
      parentId: n.parent ? idOf(n.parent) : null,
      childIds: n.children.map(idOf),
      inputs: n.txIndex !== undefined ? [txs[n.txIndex]!] : [],
    })),
  );
  await ctx.fabric.addTree(
    block.number,
    plan,
    nodePriority,
    (n) => (n.txIndex !== undefined ? [txs[n.txIndex]! as `0x${string}`] : []),
    new Map(),
    block.proofSystem,
  );
  const now = ctx.now();
  // The winner proves a committed block; anyone proves an unclaimed one. The tree's size is
  // written in the same statement as the move (the move's moment is the block's start).
  const [from, to] =
    block.stage === STAGE.committed
      ? [STAGE.committed, STAGE.proving]
      : [STAGE.unclaimed, STAGE.open_proving];
  await ctx.prisma.$transaction(async (tx) => {
    if (!(await moveStage(tx, block.number, from, to, now, { jobsTotal: plan.nodes.length }))) {
      return;
    }
    if (from !== STAGE.committed) return;
    await tx.$executeRaw`
      UPDATE "Block" SET
        "fabricDownMs" = "fabricDownMs" + GREATEST(0, ${BigInt(now)}::bigint - ${block.biddingClosesAt}::bigint),
        "fabricDownSince" = CASE WHEN "fabricDownSince" IS NULL THEN NULL
          ELSE GREATEST("fabricDownSince", ${BigInt(now)}::bigint) END
      WHERE number = ${block.number}`;
  });
  // Relays drop their cached view of the blocks being proven and wake every waiting worker.
  await ctx.fabric.announceBlocks();
  ctx.log.info({ blockNumber: block.number, jobs: plan.nodes.length }, "proof tree fanned out");
}
