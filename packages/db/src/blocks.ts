// The one writer of a block's stage. A block is created in `auction_open`; every later move is a
// compare-and-set along core's lifecycle table, so two aggregators or a retried tick cannot apply
// a transition twice. (The SQL function pb_record_proof moves a block to `proven` itself, inside
// the proof's own statement; a test checks that move against the same table.)
import { advanceStage, STAGE, type Stage, type StageTimes } from "@prover-boost/core";
import type { Prisma as PrismaTypes } from "./generated/client.ts";
import type { Tx } from "./ledger.ts";

/** Other columns set with a stage move (the winner when an auction closes, ...). */
export type StageMoveColumns = Omit<
  PrismaTypes.BlockUpdateManyMutationInput,
  "number" | "stage" | "stages" | "updatedAt"
>;

/**
 * Moves block `number` from `from` to `to` if it is still in `from`. Returns false if it was
 * not (someone else moved it, or it does not exist); throws InvariantError for a move the
 * lifecycle does not allow.
 */
export async function moveStage(
  tx: Tx,
  number: number,
  from: Stage,
  to: Stage,
  now: number,
  columns: StageMoveColumns = {},
): Promise<boolean> {
  const block = await tx.block.findUnique({ where: { number } });
  if (!block || block.stage !== from) return false;
  const stages = advanceStage(from, to, block.stages as StageTimes, now);
  const res = await tx.block.updateMany({
    where: { number, stage: from },
    data: { ...columns, stage: to, stages, updatedAt: BigInt(now) },
  });
  return res.count === 1;
}

/**
 * The block of a newly opened auction, in `auction_open`. Returns the unawaited query so it can
 * join a batch transaction with the auction row it belongs to.
 */
export function createBlock(db: Tx, number: number, now: number) {
  return db.block.create({
    data: {
      number,
      stage: STAGE.auction_open,
      stages: { [STAGE.auction_open]: now },
      updatedAt: BigInt(now),
    },
  });
}
