// A granted lease's record in the tree view (its ProofJob row: leased, by which operator and
// worker, under which lease id) is written after the lease is answered, not before. The record
// is a view: what the lease binds lives in Redis (BullMQ's lock, the broker's lease record), the
// penalties of a lapse are taken from there, and the proof's own mark, which is awaited before a
// result is accepted, overwrites it. So the worker need not wait for Postgres to start proving,
// and the per-job path keeps one Postgres round trip (the proof's) instead of two.
//
// A record may therefore arrive after its lease has ended (a lapse, a fail, a release, an invalid
// proof, an answer never heard), ended by this relay or another. Nothing here waits for it: the
// row keeps the stamp of the latest lease it has heard of, begun or ended, and a record is
// written only over an older one (`endLease` in db/proofs.ts, the lease-records-in-order
// migration), so a late record cannot bring back an ended lease nor overwrite a newer one; it is
// refused (`on.written` is told so). A record that fails (reported through `on.failed`) leaves
// the row as the view last saw it, until the job's next record; no decision waits on this view.
import type { JobMark } from "@prover-boost/db";
import pTimeout from "p-timeout";
import type { GroupCommit } from "./group-commit.ts";

type LeaseMark = Extract<JobMark, { kind: "leased" }>;

/**
 * How long a record may wait for a write that something else starts (a proof's mark, which a
 * result's answer waits for) before it starts one of its own: most records then share the proof
 * marks' writes instead of costing writes of their own (each write has a fixed cost in Prisma's
 * client and in Postgres).
 */
export const LEASE_MARK_RIDE_MS = 25;

export class LeaseMarks {
  /** Records on their way. */
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly marks: GroupCommit<JobMark, boolean>,
    private readonly on: {
      /**
       * A record's write is done; `sentAt`: when it was sent (performance.now()); `applied`:
       * false when the row had moved on (the lease ended, a newer one recorded, the job proven
       * or failed) and the record was refused.
       */
      written?: (sentAt: number, applied: boolean) => void;
      failed?: (jobId: string, err: unknown) => void;
    } = {},
    /** How long a record waits for a write something else starts (LEASE_MARK_RIDE_MS). */
    private readonly rideMs = LEASE_MARK_RIDE_MS,
  ) {}

  /** Sends a lease's record; the caller does not wait for it. */
  write(mark: LeaseMark): void {
    const sent = performance.now();
    const done = this.marks.submit(mark, { rideMs: this.rideMs }).then(
      (applied) => this.on.written?.(sent, applied),
      (err: unknown) => this.on.failed?.(mark.jobId, err),
    );
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  /** Resolves once every record on its way is written or has failed, or after `ms` (closing). */
  drained(ms: number): Promise<void> {
    return pTimeout(
      Promise.all(this.pending).then(() => {}),
      { milliseconds: ms, fallback: () => {} },
    );
  }

  /** Records on their way (tests). */
  get size(): number {
    return this.pending.size;
  }
}
