// Paying out proven blocks. The whole payout of a block (payout rows, ledger movement, bond
// release, stage change) is one transaction guarded by the block's stage, so a crash or a retry
// pays each recipient exactly once.
import { blockPayouts, type JobType, weightedWork } from "@prover-boost/core";
import { accounts, applyMovement } from "@prover-boost/db";
import type { AggregatorContext } from "./context.ts";
import { moveStage } from "./stage.ts";

export async function payProvenBlocks(ctx: AggregatorContext): Promise<number> {
  const blocks = await ctx.prisma.block.findMany({
    where: { stage: "proven" },
    select: { number: true },
    take: 20,
  });
  for (const { number } of blocks) {
    const paid = await payBlock(ctx, number);
    if (paid) await ctx.fabric.retireBlock(number).catch(() => {});
  }
  return blocks.length;
}

export async function payBlock(ctx: AggregatorContext, number: number): Promise<boolean> {
  const now = ctx.now();
  return ctx.prisma.$transaction(async (tx) => {
    const locked = await tx.$queryRaw<{ stage: string }[]>`
      SELECT stage FROM "Block" WHERE number = ${number} FOR UPDATE`;
    if (locked[0]?.stage !== "proven") return false;
    const block = await tx.block.findUniqueOrThrow({ where: { number }, include: { auction: true } });
    const auction = block.auction;
    const proofs = await tx.proofJob.findMany({
      where: { blockNumber: number, status: "proven", operator: { not: null } },
      select: { operator: true, type: true },
    });
    const work = weightedWork(
      proofs.map((p) => ({ operator: p.operator!, type: p.type as JobType })),
      ctx.env.JOB_WEIGHTS,
    );
    const reward = BigInt(auction.blockReward.toFixed());
    const parts = blockPayouts({
      reward,
      feeBps: block.feeBps ?? auction.maxFeeBps,
      submitterBps: ctx.env.SUBMITTER_BPS,
      sequencer: auction.sequencer,
      submitter: ctx.env.SUBMITTER_ADDRESS ?? auction.sequencer,
      work,
    });
    await tx.payout.createMany({
      data: parts.map((p) => ({
        id: `${number}:${p.role}:${p.recipient.toLowerCase()}`,
        blockNumber: number,
        recipient: p.recipient,
        role: p.role,
        amount: p.amount.toString(),
        createdAt: BigInt(now),
      })),
    });
    await applyMovement(tx, {
      kind: "payout",
      legs: [
        { account: accounts.rewards, amount: -reward },
        ...parts.map((p) => ({ account: accounts.earnings(p.recipient), amount: p.amount })),
      ],
      blockNumber: number,
      nowMs: now,
    });
    if (block.winner && block.bondAmount) {
      const bond = BigInt(block.bondAmount.toFixed());
      const still = await tx.ledgerEntry.count({
        where: { blockNumber: number, kind: "slash", account: accounts.locked(block.winner) },
      });
      if (still === 0) {
        await applyMovement(tx, {
          kind: "unlock",
          legs: [
            { account: accounts.locked(block.winner), amount: -bond },
            { account: accounts.available(block.winner), amount: bond },
          ],
          blockNumber: number,
          nowMs: now,
        });
      }
    }
    return moveStage(tx, number, "proven", "paid", now);
  });
}
