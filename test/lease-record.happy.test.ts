// A granted lease is answered before its record in the tree view (the job's ProofJob row: leased,
// by whom, under which lease) is written, so the record may arrive after the lease has ended,
// ended through this relay or another. It must then be refused: the row must not show the ended
// lease, nor lose a newer lease's record to it. On real Redis and Postgres, with two relays, and
// the record held in the granting relay on its way to Postgres.
import { createRelay, type Relay } from "@prover-boost/relay";
import { RelayClient } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, signIn } from "./support/blocks.ts";
import { holdCalls, holdLeaseRecords } from "./support/lease-records.ts";

describe("a lease's record in Postgres", () => {
  const op = account(0x2e);
  const blockNumber = 1;
  let stack: Stack;
  let other: Relay | undefined;
  let otherUrl: string;

  beforeAll(async () => {
    stack = await startStack({ env: { LEASE_MS: "30000", RATE_LIMIT_PER_IP: "0" } });
    other = await createRelay(stack.relay.env, { db: stack.db });
    await other.app.listen({ port: 0, host: "127.0.0.1" });
    const address = other.app.server.address();
    otherUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    await stack.admin.deposit(op.address, 10n ** 18n);
    await openBlock(stack, blockNumber, { txCount: 2, winner: op });
  });
  afterAll(async () => {
    await other?.close();
    await stack?.close();
  });
  const rowOf = (id: string) => stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id } });

  it("arriving after its lease ended on another relay, is refused, and a newer lease's stays", async () => {
    const w1 = await signIn(stack, op, "w1", { capacity: 1 });
    const w2 = await signIn(stack, op, "w2", { capacity: 2 });
    // w1's lease records are held in the granting relay, before they reach Postgres.
    const release = holdLeaseRecords(stack, "w1");
    try {
      // The lease is answered while its record is held.
      const job = (await w1.client.lease(1000))!;
      expect(job).not.toBeNull();
      expect(stack.relay.ctx.leaseMarks.size).toBe(1);
      expect((await rowOf(job.id)).status).toBe("queued");
      // w1 gives the job back through the other relay, which knows nothing of the record.
      const elsewhere = new RelayClient({ baseUrl: otherUrl }).withToken(w1.token);
      expect(await elsewhere.failJob(job.id, "out of memory", true)).toMatchObject({
        status: "requeued",
      });
      expect((await rowOf(job.id)).status).toBe("queued");
      // w2 leases it (and the other base job) and its record is written.
      const taken = [(await w2.client.lease(1000))!, (await w2.client.lease(1000))!];
      expect(taken.map((j) => j.id)).toContain(job.id);
      const newer = await eventually(async () => {
        const row = await rowOf(job.id);
        return row.status === "leased" ? row : null;
      });
      expect(newer.workerId).toBe("w2");
      // Now w1's record reaches Postgres: refused, the row still shows w2's lease.
      release();
      await eventually(async () => stack.relay.ctx.leaseMarks.size === 0);
      expect(await rowOf(job.id)).toMatchObject({
        status: "leased",
        workerId: "w2",
        leaseId: newer.leaseId,
        attempts: newer.attempts,
      });
      for (const j of taken) await w2.client.submitResult(j.id, proofOf(j));
      expect(await rowOf(job.id)).toMatchObject({ status: "proven", workerId: "w2" });
    } finally {
      release();
    }
  });

  it("arriving after its worker gave the job back on the same relay, is refused", async () => {
    await openBlock(stack, 2, { txCount: 2, winner: op });
    const w3 = await signIn(stack, op, "w3", { capacity: 1 });
    const late = async () =>
      (await stack.relay.ctx.metrics.leaseRecordsLate.get()).values[0]!.value;
    const lateBefore = await late();
    const release = holdLeaseRecords(stack, "w3");
    try {
      const job = (await w3.client.lease(1000))!;
      // The give-back does not wait for the record.
      expect(await w3.client.failJob(job.id, "out of memory", true)).toMatchObject({
        status: "requeued",
      });
      release();
      await eventually(async () => stack.relay.ctx.leaseMarks.size === 0);
      expect(await rowOf(job.id)).toMatchObject({ status: "queued", workerId: null });
      expect(await late()).toBe(lateBefore + 1);
    } finally {
      release();
    }
  });

  it("does not keep a job failed for good out of its row, even under a later stamp", async () => {
    await openBlock(stack, 3, { txCount: 2, winner: op });
    const w5 = await signIn(stack, op, "w5", { capacity: 1 });
    const job = (await w5.client.lease(1000))!;
    const row = await eventually(async () => {
      const r = await rowOf(job.id);
      return r.status === "leased" ? r : null;
    });
    // Redis's clock stepped back since an earlier lease of the job: the row's stamp is later
    // than this lease's.
    await stack.db.prisma.proofJob.update({
      where: { id: job.id },
      data: { leaseAt: row.leaseAt! + 3_600_000n },
    });
    expect(await w5.client.failJob(job.id, "cannot prove this", false)).toEqual({
      status: "failed",
    });
    expect((await rowOf(job.id)).status).toBe("failed");
  });

  it("shows the lease once written, and the proof's record replaces it", async () => {
    const w4 = await signIn(stack, op, "w4", { capacity: 1 });
    const job = (await w4.client.lease(1000))!;
    const leased = await eventually(async () => {
      const row = await rowOf(job.id);
      return row.status === "leased" ? row : null;
    });
    expect(leased).toMatchObject({ operator: op.address, workerId: "w4" });
    await w4.client.submitResult(job.id, proofOf(job));
    expect(await rowOf(job.id)).toMatchObject({ status: "proven", workerId: "w4" });
  });
});

/**
 * A stack of its own for the describe that calls this, with `op`'s collateral and block 1 (two
 * base jobs) committed to `op`; the stack is read once `beforeAll` has run.
 */
function stackWithBlock(op: ReturnType<typeof account>, env: Record<string, string>) {
  let stack: Stack | undefined;
  beforeAll(async () => {
    stack = await startStack({ env: { RATE_LIMIT_PER_IP: "0", ...env } });
    await stack.admin.deposit(op.address, 10n ** 18n);
    await openBlock(stack, 1, { txCount: 2, winner: op });
  });
  afterAll(async () => {
    await stack?.close();
  });
  return () => stack!;
}

describe("a job's row when invalid proofs fail it for good", () => {
  const op = account(0x2f);
  const stackOf = stackWithBlock(op, { LEASE_MS: "30000", MAX_JOB_ATTEMPTS: "1" });

  it("says failed, with no wait for the lease's record", async () => {
    const stack = stackOf();
    const w = await signIn(stack, op, "w1", { capacity: 1 });
    // The lease's record never arrives before the end: the row must still say failed.
    const release = holdLeaseRecords(stack, "w1");
    try {
      const job = (await w.client.lease(1000))!;
      await expect(w.client.submitResult(job.id, `0x${"00".repeat(32)}`)).rejects.toMatchObject({
        status: 422,
        code: "INVALID_PROOF",
      });
      const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job.id } });
      expect(row.status).toBe("failed");
      release();
      await eventually(async () => stack.relay.ctx.leaseMarks.size === 0);
      expect(
        (await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job.id } })).status,
      ).toBe("failed");
    } finally {
      release();
    }
  });
});

describe("a job's row when a worker fails a lease it has already lost", () => {
  const op = account(0x30);
  const stackOf = stackWithBlock(op, { LEASE_MS: "1000", WITHHOLD_PENALTY_WEI: "5" });
  const rowOf = (id: string) => stackOf().db.prisma.proofJob.findUniqueOrThrow({ where: { id } });

  it("is not failed: the job is leased again, and its new lease's record is kept", async () => {
    const stack = stackOf();
    const w1 = await signIn(stack, op, "w1", { capacity: 1 });
    const w2 = await signIn(stack, op, "w2", { capacity: 2 });
    // The relay's claim of lapsed leases is held: BullMQ has the job back, w1's lease record
    // in Redis is still there (as when the claim is slow, or made by another relay).
    const releaseClaims = holdCalls(stack.relay.ctx.broker, "claimTimedOutJob");
    const releaseRecords = holdLeaseRecords(stack, "w2");
    let beats: NodeJS.Timeout | undefined;
    try {
      const job = (await w1.client.lease(1000))!;
      // w1 sends no heartbeat: its lease lapses, and w2 leases the job, its record held.
      const taken = await eventually(async () => {
        const j = await w2.client.lease(500);
        if (j && j.id !== job.id) await w2.client.submitResult(j.id, proofOf(j));
        return j?.id === job.id ? j : null;
      }, 15_000);
      // w2 keeps its lease, however long the rest takes.
      beats = setInterval(() => void w2.client.heartbeat(taken.id).catch(() => {}), 200);
      // Now w1, late, says it cannot prove the job: its lease is gone, so nothing of it counts.
      await expect(w1.client.failJob(job.id, "cannot prove this", false)).rejects.toMatchObject({
        status: 409,
        code: "LEASE_LOST",
      });
      expect((await rowOf(job.id)).status).not.toBe("failed");
      releaseClaims();
      releaseRecords();
      await eventually(async () => stack.relay.ctx.leaseMarks.size === 0);
      expect(await rowOf(job.id)).toMatchObject({ status: "leased", workerId: "w2" });
      clearInterval(beats);
      await w2.client.submitResult(taken.id, proofOf(taken));
      expect(await rowOf(job.id)).toMatchObject({ status: "proven", workerId: "w2" });
      // w1's lapse, let through, is handled before the stack closes.
      await eventually(async () => {
        const lapsed = await stack.relay.ctx.metrics.leasesLapsed.get();
        return lapsed.values.reduce((n, v) => n + v.value, 0) === 1;
      });
    } finally {
      clearInterval(beats);
      releaseClaims();
      releaseRecords();
    }
  });
});
