// The relay's group-committed job bookkeeping (pb_job_marks / pb_record_proof) against a real
// Postgres and the embedded PGlite: lease marks, proof records, idempotency, the root proof
// closing its block, a batch of different jobs written a statement per kind (with the same
// results as mark by mark, and one market event per change), lease records written in the order
// of their leases whatever order they arrive in, and a bad batch changing nothing.
import {
  type Database,
  endLease,
  type JobMark,
  recordProof,
  writeJobMarks,
} from "@prover-boost/db";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  DATABASE_BACKENDS,
  openScratchDatabase,
  type ScratchDatabase,
} from "./support/databases.ts";

const op = "0x00000000000000000000000000000000000000aa";

async function seedBlock(db: Database, number: number, stage: string) {
  await db.prisma.auction.create({
    data: {
      blockNumber: number,
      slot: 1,
      txCount: 2,
      txsHash: "0x",
      txs: [],
      blockReward: "1",
      minBond: "1",
      maxFeeBps: 1,
      biddingClosesAt: 1n,
      proofDeadline: 2n,
      sequencer: op,
      signature: "0x",
      createdAt: 1n,
    },
  });
  await db.prisma.block.create({
    data: { number, stage, stages: { [stage]: 1 }, jobsTotal: 3, updatedAt: 1n },
  });
  for (const [id, type, level, index] of [
    [`${number}-0-0`, "block_root", 0, 0],
    [`${number}-1-0`, "base", 1, 0],
    [`${number}-1-1`, "base", 1, 1],
  ] as const) {
    await db.prisma.proofJob.create({
      data: { id, blockNumber: number, type, level, index, childIds: [], inputs: [] },
    });
  }
}

/** Lease stamps (Redis time in the relay), later for every lease made here. */
let stamps = 1_000;
const leased = (
  jobId: string,
  blockNumber: number,
  worker = "w1",
  leaseAt = ++stamps,
): JobMark => ({
  kind: "leased",
  jobId,
  blockNumber,
  operator: op,
  worker,
  leaseId: `lease-of-${worker}`,
  leaseAt,
});
const proven = (jobId: string, blockNumber: number, isRoot = false): JobMark => ({
  kind: "proven",
  jobId,
  blockNumber,
  isRoot,
  proof: `0x${jobId.replaceAll("-", "")}`,
  operator: op,
  worker: "w1",
});

describe.each(DATABASE_BACKENDS)("job marks on %s", (backend) => {
  let scratch: ScratchDatabase | undefined;
  let db: Database;

  beforeAll(async () => {
    scratch = await openScratchDatabase(backend, "marks");
    db = scratch.db;
  });
  afterAll(async () => {
    await scratch?.close();
  });
  beforeEach(async () => {
    await db.prisma.proofJob.deleteMany();
    await db.prisma.block.deleteMany();
    await db.prisma.auction.deleteMany();
    await seedBlock(db, 7, "proving");
    await seedBlock(db, 3, "committed");
  });

  const job = (id: string) => db.prisma.proofJob.findUniqueOrThrow({ where: { id } });
  const block = (n: number) => db.prisma.block.findUniqueOrThrow({ where: { number: n } });

  it("marks leases and counts attempts; a proof is recorded once and never un-proven", async () => {
    expect(
      await writeJobMarks(db.prisma, [leased("7-1-0", 7), leased("7-1-0", 7, "w2")], 10),
    ).toEqual([true, true]);
    expect(await job("7-1-0")).toMatchObject({
      status: "leased",
      workerId: "w2",
      attempts: 2,
      leaseId: "lease-of-w2",
    });
    expect(
      await writeJobMarks(
        db.prisma,
        [proven("7-1-0", 7), leased("7-1-0", 7, "w3"), proven("7-1-0", 7)],
        20,
      ),
    ).toEqual([true, false, false]);
    expect(await job("7-1-0")).toMatchObject({
      status: "proven",
      workerId: "w1",
      proof: "0x710",
      provenAt: 20n,
    });
    expect((await block(7)).jobsProven).toBe(1);
    // The single-proof path (the aggregator's reconciler) is the same function.
    expect(
      await recordProof(
        db.prisma,
        "7-1-0",
        7,
        false,
        { proof: "0x1", operator: op, worker: "x" },
        30,
      ),
    ).toBe(false);
    expect(
      await recordProof(
        db.prisma,
        "7-1-1",
        7,
        false,
        { proof: "0x2", operator: op, worker: "x" },
        30,
      ),
    ).toBe(true);
    expect((await block(7)).jobsProven).toBe(2);
  });

  it("a root proof closes a proving block, and only a proving (or open proving) one", async () => {
    const out = await writeJobMarks(
      db.prisma,
      [proven("7-0-0", 7, true), proven("3-0-0", 3, true)],
      40,
    );
    expect(out).toEqual([true, true]);
    const b7 = await block(7);
    expect(b7).toMatchObject({ stage: "proven", rootProof: "0x700", jobsProven: 1 });
    expect(b7.stages).toMatchObject({ proving: 1, proven: 40 });
    const b3 = await block(3);
    expect(b3).toMatchObject({ stage: "committed", rootProof: null, jobsProven: 1 });
  });

  it("a batch of different jobs: each mark's result, every block's count and one event per change", async () => {
    await writeJobMarks(db.prisma, [leased("7-1-0", 7), proven("3-1-1", 3)], 5);
    await db.prisma.marketEvent.deleteMany();
    // Block 7: a lease of a job leased already (no status change), a new lease, a proof of a
    // leased job and its root's proof; block 3: a proof already recorded and a new one.
    const out = await writeJobMarks(
      db.prisma,
      [
        leased("7-1-0", 7, "w2"),
        proven("3-1-1", 3),
        leased("7-1-1", 7),
        proven("3-1-0", 3),
        proven("7-0-0", 7, true),
      ],
      60,
    );
    expect(out).toEqual([true, false, true, true, true]);
    expect(await job("7-1-0")).toMatchObject({ status: "leased", workerId: "w2", attempts: 2 });
    expect(await job("7-1-1")).toMatchObject({ status: "leased", attempts: 1 });
    expect(await job("3-1-0")).toMatchObject({ status: "proven", provenAt: 60n });
    expect(await job("3-1-1")).toMatchObject({ status: "proven", provenAt: 5n });
    expect(await block(7)).toMatchObject({ stage: "proven", rootProof: "0x700", jobsProven: 1 });
    expect(await block(3)).toMatchObject({ stage: "committed", rootProof: null, jobsProven: 2 });
    const events = await db.prisma.marketEvent.findMany({ orderBy: { id: "asc" } });
    expect(
      events.map((e) => {
        const d = e.data as { id?: string; status?: string; stage?: string };
        return `${e.type} ${e.blockNumber} ${d.id ?? d.stage} ${d.status ?? ""}`.trim();
      }),
    ).toEqual(
      expect.arrayContaining([
        "job 7 7-1-1 leased",
        "job 3 3-1-0 proven",
        "job 7 7-0-0 proven",
        "stage 7 proven",
      ]),
    );
    expect(events).toHaveLength(4);
  });

  it("writes a lease's record only over an older lease, begun or ended, alone or in a batch", async () => {
    const base = stamps;
    const at = (n: number) => base + n;
    const lease = (n: number) => ({ jobId: "7-1-0", leaseId: `lease-of-w${n}`, leaseAt: at(n) });
    expect(await writeJobMarks(db.prisma, [leased("7-1-0", 7, "w20", at(20))], 1)).toEqual([true]);
    // A record of an earlier lease, arriving late: refused, alone or in a batch of other jobs.
    expect(await writeJobMarks(db.prisma, [leased("7-1-0", 7, "w10", at(10))], 2)).toEqual([false]);
    expect(
      await writeJobMarks(db.prisma, [leased("7-1-0", 7, "w10", at(10)), leased("7-1-1", 7)], 3),
    ).toEqual([false, true]);
    expect(await job("7-1-0")).toMatchObject({ workerId: "w20", leaseAt: BigInt(at(20)) });
    // The end of that earlier lease changes nothing either; the current one's ends it.
    expect(await endLease(db.prisma, lease(10), "queued")).toBe(false);
    expect(await job("7-1-0")).toMatchObject({ status: "leased", workerId: "w20" });
    expect(await endLease(db.prisma, lease(20), "queued")).toBe(true);
    // A lease that ended before its record came: the record is refused, and so is one of an
    // earlier lease; a later lease's is written. Mark by mark (a batch naming the job twice) as
    // in sets.
    expect(await endLease(db.prisma, lease(30), "queued")).toBe(true);
    expect(
      await writeJobMarks(
        db.prisma,
        [leased("7-1-0", 7, "w30", at(30)), leased("7-1-0", 7, "w25", at(25))],
        4,
      ),
    ).toEqual([false, false]);
    expect(await job("7-1-0")).toMatchObject({ status: "queued", leaseAt: BigInt(at(30)) });
    // Ends arriving out of order: a later lease ended, then an earlier one, whose record is in
    // the row no more: the stamp never goes back, and the later lease's record is still refused.
    expect(await endLease(db.prisma, lease(50), "queued")).toBe(true);
    expect(await endLease(db.prisma, lease(30), "queued")).toBe(false);
    expect(await writeJobMarks(db.prisma, [leased("7-1-0", 7, "w50", at(50))], 5)).toEqual([false]);
    expect(
      await writeJobMarks(
        db.prisma,
        [leased("7-1-0", 7, "w60", at(60)), leased("7-1-0", 7, "w50", at(50))],
        6,
      ),
    ).toEqual([true, false]);
    expect(await job("7-1-0")).toMatchObject({
      status: "leased",
      workerId: "w60",
      leaseAt: BigInt(at(60)),
      attempts: 2,
    });
    // Failed for good: not by a lease older than the one recorded (it had lost the job), but by
    // the one recorded or a later one, whatever the row shows; no record touches a failed row.
    expect(await endLease(db.prisma, lease(55), "failed")).toBe(false);
    expect(await endLease(db.prisma, lease(65), "failed")).toBe(true);
    expect(await job("7-1-0")).toMatchObject({ status: "failed", leaseAt: BigInt(at(65)) });
    expect(await writeJobMarks(db.prisma, [leased("7-1-0", 7, "w70", at(70))], 7)).toEqual([false]);
  });

  it("ends an unstamped row only when it is queued or names the lease", async () => {
    // A row recorded without a stamp (before stamps, or by a relay from before them).
    await db.prisma.proofJob.update({
      where: { id: "7-1-0" },
      data: { status: "leased", leaseId: "lease-of-w2", workerId: "w2" },
    });
    const end = (leaseId: string) =>
      endLease(db.prisma, { jobId: "7-1-0", leaseId, leaseAt: 5 }, "queued");
    expect(await end("lease-of-w1")).toBe(false);
    expect(await end("lease-of-w2")).toBe(true);
    expect(await job("7-1-1")).toMatchObject({ status: "queued", leaseAt: null });
    expect(await endLease(db.prisma, { jobId: "7-1-1", leaseId: "x", leaseAt: 5 }, "queued")).toBe(
      true,
    );
    expect(await job("7-1-1")).toMatchObject({ status: "queued", leaseAt: 5n });
  });

  it("a batch with a malformed mark fails whole and changes nothing", async () => {
    const bad = { kind: "bogus", jobId: "7-1-1", blockNumber: 7 } as unknown as JobMark;
    await expect(writeJobMarks(db.prisma, [proven("7-1-0", 7), bad], 50)).rejects.toThrow();
    expect(await job("7-1-0")).toMatchObject({ status: "queued", attempts: 0 });
    expect((await block(7)).jobsProven).toBe(0);
  });
});
