// Recording an accepted proof: the job's proof and credit, and the block's progress (and, for a
// root proof, the block's `proven` stage), in one statement so it is all-or-nothing and
// idempotent: a job already proven is not counted twice.
import type { Tx } from "./ledger.ts";

export interface AcceptedProof {
  proof: string;
  operator: string;
  worker: string;
}

export async function recordProof(
  db: Tx,
  jobId: string,
  blockNumber: number,
  isRoot: boolean,
  result: AcceptedProof,
  nowMs: number,
): Promise<boolean> {
  const now = BigInt(nowMs);
  const updated = await db.$executeRaw`
    WITH job AS (
      UPDATE "ProofJob"
      SET status = 'proven', proof = ${result.proof}, operator = ${result.operator},
          "workerId" = ${result.worker}, "provenAt" = ${now}
      WHERE id = ${jobId} AND status <> 'proven'
      RETURNING 1
    ), root AS (
      SELECT ${isRoot}::boolean AND b.stage IN ('proving', 'open_proving') AS closes
      FROM "Block" b WHERE b.number = ${blockNumber}
    )
    UPDATE "Block" SET
      "jobsProven" = "jobsProven" + 1,
      "updatedAt" = ${now},
      stage = CASE WHEN (SELECT closes FROM root) THEN 'proven' ELSE stage END,
      "rootProof" = CASE WHEN (SELECT closes FROM root) THEN ${result.proof}::text ELSE "rootProof" END,
      stages = CASE WHEN (SELECT closes FROM root)
        THEN stages || jsonb_build_object('proven', ${now}::bigint) ELSE stages END
    WHERE number = ${blockNumber} AND EXISTS (SELECT 1 FROM job)`;
  return updated === 1;
}
