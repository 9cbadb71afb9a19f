// A granted lease's record in the tree view (its ProofJob row: leased, by which operator and
// worker, under which lease id) is written after the lease is answered, not before. The record
// is a view: what the lease binds lives in Redis (BullMQ's lock, the broker's lease record), the
// penalties of a lapse are taken from there, and the proof's own mark, which is awaited before a
// result is accepted, overwrites it. So the worker need not wait for Postgres to start proving,
// and the per-job path keeps one Postgres round trip (the proof's) instead of two.
//
// Whatever later resets the row for this lease (a lapse, a fail, a release, an invalid proof, an
// answer never heard) waits for the record first (`settled`), so a record still on its way can
// never land after the reset and show the job leased to a lease that ended. A record that fails
// is reported (`onFailed`) and left: the row stays as it was until the job's next mark.
import { performance } from "node:perf_hooks";
import type { JobMark } from "@prover-boost/db";
import type { GroupCommit } from "./group-commit.ts";

type LeaseMark = Extract<JobMark, { kind: "leased" }>;

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

  /** Resolves once the lease's record (if one is on its way) is written or has failed. */
  settled(token: string): Promise<void> {
    return this.pending.get(token) ?? Promise.resolve();
  }

  /** Records on their way (metrics and tests). */
  get size(): number {
    return this.pending.size;
  }
}
