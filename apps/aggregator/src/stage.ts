import { advanceStage, type Stage, type StageTimes } from "@prover-boost/core";
import type { Tx } from "@prover-boost/db";

/**
 * Moves a block from `from` to `to` if it is still in `from` (compare-and-set, so two
 * aggregators or a retried tick cannot apply a transition twice). Returns false if it was not.
 */
export async function moveStage(
  tx: Tx,
  number: number,
  from: Stage,
  to: Stage,
  now: number,
  extra: Record<string, unknown> = {},
): Promise<boolean> {
  const block = await tx.block.findUnique({ where: { number } });
  if (!block || block.stage !== from) return false;
  const stages = advanceStage(from, to, block.stages as StageTimes, now);
  const res = await tx.block.updateMany({
    where: { number, stage: from },
    data: { stage: to, stages, updatedAt: BigInt(now), ...extra },
  });
  return res.count === 1;
}
