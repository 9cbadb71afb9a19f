// A granted lease's record in the tree view (its ProofJob row: leased, by which operator and
// worker, under which lease id) is written after the lease is answered, not before. The record
// is a view: what the lease binds lives in Redis (BullMQ's lock, the broker's lease record), the
// penalties of a lapse are taken from there, and the proof's own mark, which is awaited before a
// result is accepted, overwrites it. So the worker need not wait for Postgres to start proving,
// and the per-job path keeps one Postgres round trip (the proof's) instead of two.
//
// Whatever this relay does to end the lease (a lapse, a fail, a release, an invalid proof, an
// answer never heard) waits for the record first (`settled`, at most SETTLE_WAIT_MS), so a
// record on its way does not land after the reset and show the job leased to a lease that ended.
// What a record cannot promise: a lease ended through another relay in the moment its record is
// on its way, or a record that failed (reported through `on.failed`) or outlasted the wait, leaves
// the row as the view last saw it until the job's next record. A job failed for good is marked
// failed by its id, whatever the row shows (gateway.ts), so no decision waits on this view.
import type { JobMark } from "@prover-boost/db";
import pTimeout from "p-timeout";
import type { GroupCommit } from "./group-commit.ts";

type LeaseMark = Extract<JobMark, { kind: "leased" }>;

/** The longest a reset waits for the lease's record: past it, the reset goes ahead. */
const SETTLE_WAIT_MS = 2_000;

export class LeaseMarks {
  /** Records on their way, by lease token. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    private readonly marks: GroupCommit<JobMark, boolean>,
    private readonly on: {
      /** A record was written; `sentAt`: when it was sent (performance.now()). */
      written?: (sentAt: number) => void;
      failed?: (jobId: string, err: unknown) => void;
    } = {},
    private readonly waitMs = SETTLE_WAIT_MS,
  ) {}

  /** Sends the lease's record; the caller does not wait for it. */
  write(token: string, mark: LeaseMark): void {
    const sent = performance.now();
    const done = this.marks.submit(mark).then(
      () => this.on.written?.(sent),
      (err: unknown) => this.on.failed?.(mark.jobId, err),
    );
    this.pending.set(token, done);
    void done.finally(() => {
      if (this.pending.get(token) === done) this.pending.delete(token);
    });
  }

  /**
   * Resolves once the lease's record (if one is on its way) is written or has failed, or after
   * the wait's bound.
   */
  settled(token: string): Promise<void> {
    const done = this.pending.get(token);
    return done ? upTo(done, this.waitMs) : Promise.resolve();
  }

  /** Resolves once every record on its way is written or has failed, or after `ms` (closing). */
  drained(ms: number): Promise<void> {
    return upTo(
      Promise.all(this.pending.values()).then(() => {}),
      ms,
    );
  }

  /** Records on their way (tests). */
  get size(): number {
    return this.pending.size;
  }
}

/** `done`, or nothing more to wait for after `ms`. */
const upTo = (done: Promise<void>, ms: number) =>
  pTimeout(done, { milliseconds: ms, fallback: () => {} });
