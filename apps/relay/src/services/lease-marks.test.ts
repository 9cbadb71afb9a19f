import type { JobMark } from "@prover-boost/db";
import { describe, expect, it } from "vitest";
import { GroupCommit } from "./group-commit.ts";
import { LEASE_MARK_RIDE_MS, LeaseMarks } from "./lease-marks.ts";

const mark = (jobId: string): Extract<JobMark, { kind: "leased" }> => ({
  kind: "leased",
  jobId,
  blockNumber: 1,
  operator: "0xop",
  worker: "w1",
  leaseId: `lease-${jobId}`,
  leaseAt: 1_000,
});

/**
 * Job marks whose writes wait until the test lets each one through (written, or refused as late
 * when `applied` is false) or fails it.
 */
function heldWrites() {
  const writes: { ids: string[]; pass(applied?: boolean): void; fail(err: Error): void }[] = [];
  const marks = new GroupCommit<JobMark, boolean>(
    (items) =>
      new Promise<boolean[]>((resolve, reject) => {
        writes.push({
          ids: items.map((m) => m.jobId),
          pass: (applied = true) => resolve(items.map(() => applied)),
          fail: reject,
        });
      }),
    { maxBatch: 16, maxInFlight: 1 },
  );
  return { marks, writes };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("LeaseMarks", () => {
  it("sends each record without waiting and keeps it until written", async () => {
    const { marks, writes } = heldWrites();
    const written: boolean[] = [];
    const leaseMarks = new LeaseMarks(
      marks,
      { written: (_sentAt, applied) => written.push(applied) },
      0,
    );
    leaseMarks.write(mark("1-1-0"));
    expect(leaseMarks.size).toBe(1);
    await tick();
    // The first write is in flight: the second record waits in the relay for its slot.
    leaseMarks.write(mark("1-1-1"));
    expect(leaseMarks.size).toBe(2);
    writes[0]!.pass();
    await tick();
    expect(writes.map((w) => w.ids)).toEqual([["1-1-0"], ["1-1-1"]]);
    expect(leaseMarks.size).toBe(1);
    // The second comes late (the row moved on): refused, and told so.
    writes[1]!.pass(false);
    await leaseMarks.drained(1_000);
    expect(leaseMarks.size).toBe(0);
    expect(written).toEqual([true, false]);
  });

  it("reports a record that failed and forgets it", async () => {
    const { marks, writes } = heldWrites();
    const failed: string[] = [];
    const leaseMarks = new LeaseMarks(marks, { failed: (jobId) => failed.push(jobId) }, 0);
    leaseMarks.write(mark("1-1-0"));
    await tick();
    writes[0]!.fail(new Error("the database is down"));
    await leaseMarks.drained(1_000);
    expect(failed).toEqual(["1-1-0"]);
    expect(leaseMarks.size).toBe(0);
  });

  it("bounds the wait for the records on their way when closing", async () => {
    const { marks, writes } = heldWrites();
    const leaseMarks = new LeaseMarks(marks, {}, 0);
    leaseMarks.write(mark("1-1-0"));
    await leaseMarks.drained(10);
    // Still on its way: the write was never let through.
    expect(writes).toHaveLength(1);
    expect(leaseMarks.size).toBe(1);
    writes[0]!.pass();
    await leaseMarks.drained(1_000);
    expect(leaseMarks.size).toBe(0);
  });

  it("a record waits for a write a proof's mark starts, and goes with it", async () => {
    const { marks, writes } = heldWrites();
    const leaseMarks = new LeaseMarks(marks, {}, 60_000);
    leaseMarks.write(mark("1-1-0"));
    leaseMarks.write(mark("1-1-1"));
    await tick();
    // No write of their own yet.
    expect(writes).toHaveLength(0);
    const proof = marks.submit({
      kind: "proven",
      jobId: "1-2-0",
      blockNumber: 1,
      isRoot: false,
      proof: "0x01",
      operator: "0xop",
      worker: "w1",
    });
    await tick();
    expect(writes.map((w) => w.ids)).toEqual([["1-1-0", "1-1-1", "1-2-0"]]);
    writes[0]!.pass();
    expect(await proof).toBe(true);
    await leaseMarks.drained(1_000);
    expect(leaseMarks.size).toBe(0);
  });

  it("by default a record alone starts its own write after LEASE_MARK_RIDE_MS", async () => {
    const { marks, writes } = heldWrites();
    const leaseMarks = new LeaseMarks(marks);
    const sent = performance.now();
    leaseMarks.write(mark("1-1-0"));
    while (writes.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(performance.now() - sent).toBeGreaterThanOrEqual(LEASE_MARK_RIDE_MS - 2);
    writes[0]!.pass();
    await leaseMarks.drained(1_000);
    expect(leaseMarks.size).toBe(0);
  });
});
