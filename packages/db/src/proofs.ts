// The job bookkeeping the relay writes on every lease and every accepted proof, as SQL functions
// (see the job-marks migration): recording a proof updates the job and its block's progress
// (and, for a root proof, the block's `proven` stage) all-or-nothing and idempotently, so a job
// already proven is never counted twice.
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
  const rows = await db.$queryRaw<{ recorded: boolean }[]>`
    SELECT pb_record_proof(${jobId}, ${blockNumber}::integer, ${isRoot}::boolean,
      ${result.proof}, ${result.operator}, ${result.worker}, ${BigInt(nowMs)}::bigint) AS recorded`;
  return rows[0]?.recorded === true;
}

export type JobMark =
  | {
      kind: "leased";
      jobId: string;
      blockNumber: number;
      operator: string;
      worker: string;
      /** Which lease (leaseIdOf its token): later resets of this lease name it. */
      leaseId: string;
      /**
       * When the lease was granted (Redis time, unix ms): the record is written only if the row
       * has heard of no lease as late, begun or ended (the lease-records-in-order migration).
       */
      leaseAt: number;
    }
  | ({ kind: "proven"; jobId: string; blockNumber: number; isRoot: boolean } & AcceptedProof);

/**
 * Writes a batch of job marks in one call, with the effect of writing them in order; one result
 * per mark (whether it changed the job: a lease mark on a proven job, or a second record of a
 * proof, does not). Marks of different jobs are written a statement per kind and one update per
 * block (see the job-marks-in-sets migration); a batch naming a job twice, mark by mark.
 */
export async function writeJobMarks(db: Tx, marks: JobMark[], nowMs: number): Promise<boolean[]> {
  const items = marks.map((m) =>
    m.kind === "leased"
      ? [m.kind, m.jobId, m.blockNumber, m.operator, m.worker, m.leaseId, m.leaseAt]
      : [m.kind, m.jobId, m.blockNumber, m.isRoot, m.proof, m.operator, m.worker],
  );
  const rows = await db.$queryRaw<{ idx: number; applied: boolean }[]>`
    SELECT idx, applied FROM pb_job_marks(${JSON.stringify(items)}::jsonb, ${BigInt(nowMs)}::bigint)`;
  const out = new Array<boolean>(marks.length).fill(false);
  for (const r of rows) out[Number(r.idx) - 1] = r.applied === true;
  return out;
}

/** A lease as its job's row knows it: its job, its id (leaseIdOf its token) and its stamp. */
export interface RecordedLease {
  jobId: string;
  leaseId: string;
  /** When it was granted (Redis time, unix ms). */
  leaseAt: number;
}

/**
 * A lease's end in its job's row. To `queued`: where the row's stamp is older than this lease's,
 * or the same and the row names this lease; never where a newer lease of the job (even of the
 * same worker id) is recorded. The stamp becomes at least this lease's, so the lease's own record,
 * written after its answer and perhaps still on its way, is refused when it arrives, from
 * whichever relay (the lease-records-in-order migration); a newer lease's is not. An unstamped
 * row (recorded before stamps, or by a relay from before them) is ended only if it is queued or
 * names this lease. To `failed` (for good): unless the row's stamp is later than this lease's,
 * whatever lease it shows, even one whose record never came; the deadline path re-issues the
 * failed rows it finds, nobody can lease the job any more, and no lease's record touches a failed
 * row. Returns whether the row changed.
 */
export async function endLease(
  db: Tx,
  lease: RecordedLease,
  status: "queued" | "failed",
): Promise<boolean> {
  const stamp = BigInt(lease.leaseAt);
  const n = await db.$executeRaw`
    UPDATE "ProofJob" SET status = ${status}, "leaseAt" = greatest("leaseAt", ${stamp}::bigint)
    WHERE id = ${lease.jobId} AND status IN ('queued', 'leased') AND (
      (${status} = 'failed' AND coalesce("leaseAt" <= ${stamp}::bigint, true))
      OR "leaseAt" < ${stamp}::bigint
      OR ("leaseAt" = ${stamp}::bigint AND "leaseId" = ${lease.leaseId})
      OR ("leaseAt" IS NULL AND (status = 'queued' OR "leaseId" = ${lease.leaseId})))`;
  return n > 0;
}

/** A proof tree's node as its ProofJob row is first written. */
export interface NewProofJob {
  id: string;
  blockNumber: number;
  type: string;
  level: number;
  index: number;
  parentId: string | null;
  childIds: string[];
  inputs: string[];
}

/**
 * Inserts a tree's ProofJob rows in one statement (rows already there are left alone, so a
 * repeated fan-out adds nothing). Returns how many were inserted.
 */
export function insertProofJobs(db: Tx, rows: readonly NewProofJob[]): Promise<number> {
  return db.$executeRaw`
    INSERT INTO "ProofJob" ("id", "blockNumber", "type", "level", "index", "parentId", "childIds", "inputs")
    SELECT r."id", r."blockNumber", r."type", r."level", r."index", r."parentId", r."childIds", r."inputs"
    FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(
      "id" text, "blockNumber" integer, "type" text, "level" integer, "index" integer,
      "parentId" text, "childIds" text[], "inputs" jsonb)
    ON CONFLICT ("id") DO NOTHING`;
}
