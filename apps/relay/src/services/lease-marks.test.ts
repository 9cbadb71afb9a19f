import type { JobMark } from "@prover-boost/db";
import { describe, expect, it } from "vitest";
import { GroupCommit } from "./group-commit.ts";
import { LeaseMarks } from "./lease-marks.ts";

const mark = (jobId: string): Extract<JobMark, { kind: "leased" }> => ({
  kind: "leased",
  jobId,
  blockNumber: 1,
  operator: "0xop",
  worker: "w1",
  leaseId: `lease-${jobId}`,
});

/** Job marks whose writes wait until the test lets each one through (or fails it). */
function heldWrites() {
  const writes: { ids: string[]; pass(): void; fail(err: Error): void }[] = [];
  const marks = new GroupCommit<JobMark, boolean>(
    (items) =>
      new Promise<boolean[]>((resolve, reject) => {
        writes.push({
          ids: items.map((m) => m.jobId),
          pass: () => resolve(items.map(() => true)),
          fail: reject,
        });
      }),
    { maxBatch: 16, maxInFlight: 1 },
  );
  return { marks, writes };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("LeaseMarks", () => {
  it("holds whatever waits on a lease until its record is written", async () => {
    const { marks, writes } = heldWrites();
    const written: string[] = [];
    const leaseMarks = new LeaseMarks(marks, { written: () => written.push("written") });
    leaseMarks.write("t1", mark("1-1-0"));
    expect(leaseMarks.size).toBe(1);
    const order: string[] = [];
    const reset = leaseMarks.settled("t1").then(() => order.push("reset"));
    await tick();
    expect(writes.map((w) => w.ids)).toEqual([["1-1-0"]]);
    expect(order).toEqual([]);
    order.push("record in");
    writes[0]!.pass();
    await reset;
    expect(order).toEqual(["record in", "reset"]);
    expect(written).toEqual(["written"]);
    expect(leaseMarks.size).toBe(0);
  });

  it("holds a reset even while the record still waits for a write slot", async () => {
    const { marks, writes } = heldWrites();
    const leaseMarks = new LeaseMarks(marks);
    leaseMarks.write("t1", mark("1-1-0"));
    await tick();
    // The first write is in flight: the second lease's record waits in the relay, unsent.
    leaseMarks.write("t2", mark("1-1-1"));
    let reset = false;
    const resetting = leaseMarks.settled("t2").then(() => {
      reset = true;
    });
    writes[0]!.pass();
    await tick();
    expect(writes.map((w) => w.ids)).toEqual([["1-1-0"], ["1-1-1"]]);
    expect(reset).toBe(false);
    writes[1]!.pass();
    await resetting;
    expect(reset).toBe(true);
  });

  it("reports a record that failed and lets what waits on it go on", async () => {
    const { marks, writes } = heldWrites();
    const failed: string[] = [];
    const leaseMarks = new LeaseMarks(marks, { failed: (jobId) => failed.push(jobId) });
    leaseMarks.write("t1", mark("1-1-0"));
    await tick();
    writes[0]!.fail(new Error("the database is down"));
    await leaseMarks.settled("t1");
    expect(failed).toEqual(["1-1-0"]);
    expect(leaseMarks.size).toBe(0);
  });

  it("bounds the wait: a record still held past it no longer holds a reset", async () => {
    const { marks, writes } = heldWrites();
    const leaseMarks = new LeaseMarks(marks, {}, 10);
    leaseMarks.write("t1", mark("1-1-0"));
    await leaseMarks.settled("t1");
    await leaseMarks.drained(10);
    // Still on its way: the write was never let through.
    expect(writes).toHaveLength(1);
    expect(leaseMarks.size).toBe(1);
    writes[0]!.pass();
    await leaseMarks.drained(1_000);
    expect(leaseMarks.size).toBe(0);
  });

  it("has nothing to wait for on a lease it never recorded", async () => {
    const leaseMarks = new LeaseMarks(heldWrites().marks);
    await expect(leaseMarks.settled("unknown")).resolves.toBeUndefined();
  });
});
