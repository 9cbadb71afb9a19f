// A result that also leases the worker's next job (`next: true`), on real Redis and Postgres: the
// answer carries the job a lease with no wait would give, the parent a proof made ready among
// them, and the job is this worker's like any lease (heartbeats, its row, its capacity). Asked
// for with nothing ready, with a proof refused, or on a relay shedding new leases, no job is
// leased and the result's own answer stands. A next job the client is no longer there to hear
// goes straight back, with no lapse and no penalty.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, proveUntilPaid, relayError, signIn } from "./support/blocks.ts";

/** A promise and the function that resolves it. */
function gate(): [Promise<void>, () => void] {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return [opened, open];
}

describe("a result that leases the next job", () => {
  const op = account(0x2c1);
  let stack: Stack;
  /** Jobs whose lease lapsed (none may). */
  const lapsed: string[] = [];

  beforeAll(async () => {
    stack = await startStack({
      // Shedding on, at a delay this test process never reaches unless the signal is forced.
      env: {
        LEASE_MS: "3000",
        WITHHOLD_PENALTY_WEI: "5",
        RATE_LIMIT_PER_IP: "0",
        OVERLOAD_LAG_MS: "30000",
      },
    });
    await stack.admin.deposit(op.address, 10n ** 18n);
    stack.relay.ctx.fabric.events.on("stalled", (id: string) => lapsed.push(id));
  });
  afterAll(async () => {
    stack?.relay.ctx.load.lag.force(null);
    await stack?.close();
  });

  const rowOf = (id: string) => stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id } });

  /**
   * A block of 4 transactions won by `op`, and a worker of capacity 1 holding one of its jobs,
   * whose row shows it leased: the lease's record follows its answer, and may ride with the next
   * write a proof's mark starts (which some tests here hold).
   */
  async function oneLeased(blockNumber: number, workerId: string) {
    await openBlock(stack, blockNumber, { txCount: 4, winner: op });
    const w = await signIn(stack, op, workerId, { capacity: 1 });
    const a = (await w.client.lease(0))!;
    await eventually(async () => (await rowOf(a.id)).status === "leased");
    return { w, a };
  }

  /** No lease lapsed so far, and no penalty was charged in the block. */
  async function nothingHeldAgainst(blockNumber: number) {
    expect(lapsed).toEqual([]);
    expect(await stack.db.prisma.penalty.count({ where: { blockNumber } })).toBe(0);
  }

  it("carries the next job, then the parent the proof made ready; nothing when none is", async () => {
    const blockNumber = 1;
    await openBlock(stack, blockNumber, { txCount: 4, winner: op });
    const w = await signIn(stack, op, "next-1", { capacity: 2 });
    const a = (await w.client.lease(0))!;
    const b = (await w.client.lease(0))!;

    // Without asking: the answer is as it always was.
    expect(await w.client.submitResult(a.id, proofOf(a))).toEqual({ status: "accepted" });

    // Asking: a and b are siblings, so b's proof made their parent ready, the most urgent job:
    // it comes with the answer, leased to this worker.
    const first = await w.client.submitResult(b.id, proofOf(b), [], { next: true });
    expect(first.status).toBe("accepted");
    const parent = first.next!;
    expect(parent).toMatchObject({ blockNumber, type: "merge", level: 1 });
    expect(parent.children.map((k) => k.id).sort()).toEqual([a.id, b.id].sort());
    expect(parent.leaseExpiresAt).toBeGreaterThan(Date.now());
    // The lease's record follows its answer.
    await eventually(async () => (await rowOf(parent.id)).status === "leased");
    expect(await rowOf(parent.id)).toMatchObject({ status: "leased", workerId: "next-1" });
    expect((await w.client.heartbeat(parent.id)).leaseExpiresAt).toBeGreaterThan(Date.now());
    expect(await stack.relay.ctx.broker.liveCount(w.sessionId)).toBe(1);

    // The root waits for the other merge: a base job comes next.
    const second = await w.client.submitResult(parent.id, proofOf(parent), [], { next: true });
    const c = second.next!;
    expect(c).toMatchObject({ blockNumber, type: "base" });
    const d = (await w.client.lease(0))!;
    expect(d.type).toBe("base");
    // d still held, nothing is ready: the answer says so and leases nothing.
    expect(await w.client.submitResult(c.id, proofOf(c), [], { next: true })).toEqual({
      status: "accepted",
      next: null,
    });
    expect(await stack.relay.ctx.broker.liveCount(w.sessionId)).toBe(1);

    const third = await w.client.submitResult(d.id, proofOf(d), [], { next: true });
    const sibling = third.next!;
    expect(sibling).toMatchObject({ type: "merge", level: 1 });
    const last = await w.client.submitResult(sibling.id, proofOf(sibling), [], { next: true });
    const root = last.next!;
    expect(root.level).toBe(0);
    expect(await w.client.submitResult(root.id, proofOf(root), [], { next: true })).toEqual({
      status: "accepted",
      next: null,
    });
    await eventually(async () => (await stack.client.getBlock(blockNumber)).stage === "paid");
    expect(await stack.db.prisma.penalty.count({ where: { blockNumber } })).toBe(0);
  });

  it("leases nothing with a refused proof or on a relay shedding new leases", async () => {
    const blockNumber = 2;
    const { w, a } = await oneLeased(blockNumber, "next-2");

    const bad = await relayError(
      w.client.submitResult(a.id, `0x${"00".repeat(32)}`, [], { next: true }),
    );
    expect(bad).toMatchObject({ status: 422, code: "INVALID_PROOF" });
    expect(await stack.relay.ctx.broker.liveCount(w.sessionId)).toBe(0);
    expect(await stack.db.prisma.proofJob.count({ where: { blockNumber, status: "leased" } })).toBe(
      0,
    );

    // Shedding: the proof is taken, no new lease is made, and the worker leases once it may.
    const again = (await w.client.lease(0))!;
    stack.relay.ctx.load.lag.force(60_000);
    try {
      expect(await w.client.submitResult(again.id, proofOf(again), [], { next: true })).toEqual({
        status: "accepted",
        next: null,
      });
      expect(await stack.relay.ctx.broker.liveCount(w.sessionId)).toBe(0);
    } finally {
      stack.relay.ctx.load.lag.force(null);
    }
    await proveUntilPaid(stack, blockNumber, [w.client]);
  });

  it("gives the next job straight back when the client left before its answer", async () => {
    const blockNumber = 3;
    const { w, a } = await oneLeased(blockNumber, "next-3");

    // The answer waits for the proof's Postgres mark, held here until the next job is leased
    // (its record sent, after the lease) and the client has gone.
    const marks = stack.relay.ctx.jobMarks;
    const submit = marks.submit.bind(marks);
    const [held, entered] = gate();
    const [released, release] = gate();
    const spy = vi.spyOn(marks, "submit").mockImplementation(async (mark) => {
      if (mark.kind === "leased" && mark.worker === "next-3") entered();
      if (mark.kind === "proven" && mark.jobId === a.id) await released;
      return submit(mark);
    });
    try {
      const req = request(`${stack.url}/v1/jobs/${a.id}/result`, {
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", authorization: `Bearer ${w.token}` },
      });
      req.on("error", () => {});
      req.end(JSON.stringify({ proof: proofOf(a), next: true }));
      await held;
      req.destroy();
      await new Promise((r) => setTimeout(r, 100));
      release();
      // The proof counts; the job leased for the answer nobody read is free again at once, well
      // within a lease's length (not by a lapse).
      await eventually(async () => (await rowOf(a.id)).status === "proven");
      await eventually(
        async () => (await stack.relay.ctx.broker.liveCount(w.sessionId)) === 0,
        1500,
      );
    } finally {
      release();
      spy.mockRestore();
    }
    const other = await signIn(stack, op, "next-3b", { capacity: 4 });
    const taken = await Promise.all([0, 1, 2].map(() => other.client.lease(0)));
    expect(taken.every((j) => j !== null)).toBe(true);
    for (const j of taken) await other.client.submitResult(j!.id, proofOf(j!));
    await proveUntilPaid(stack, blockNumber, [other.client]);
    // Past a lease's length: nothing lapsed, and nothing was held against anyone.
    await new Promise((r) => setTimeout(r, 3200));
    await nothingHeldAgainst(blockNumber);
  });

  /**
   * Holds every proof's mark of `blockNumber` in Postgres (a transaction holding the block's row,
   * which a proof's mark locks first) until `release` is called; `holder` is the backend
   * holding it, which the marks waiting on it name among their blockers.
   */
  async function holdProofMarks(blockNumber: number) {
    const [isLocked, locked] = gate();
    const [released, open] = gate();
    let holder = 0;
    const holding = stack.db.prisma.$transaction(
      async (tx) => {
        await tx.$queryRaw`SELECT number FROM "Block" WHERE number = ${blockNumber} FOR UPDATE`;
        const [me] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
        holder = me!.pid;
        locked();
        await released;
      },
      { timeout: 60_000 },
    );
    await isLocked;
    return {
      holder,
      release: async () => {
        open();
        await holding;
      },
    };
  }

  /**
   * Cuts the relay's connection writing a proof's mark (the one waiting on `holder`'s row, and no
   * other test's): the mark fails.
   */
  const cutMarkWaitingOn = (holder: number) =>
    eventually(async () => {
      const cut = await stack.db.prisma.$queryRaw<{ pid: number }[]>`
        SELECT pg_terminate_backend(pid) AS pid FROM pg_stat_activity
        WHERE ${holder}::int = ANY(pg_blocking_pids(pid))`;
      return cut.length > 0;
    }, 10_000);

  /** The job of `blockNumber` whose row says it is leased to `worker`, other than `except`. */
  const leasedRowOf = (blockNumber: number, worker: string, except: string) =>
    stack.db.prisma.proofJob.findFirst({
      where: { blockNumber, status: "leased", workerId: worker, id: { not: except } },
    });

  it("leases the next job while the proof's own mark is still being written", async () => {
    const blockNumber = 4;
    const { w, a } = await oneLeased(blockNumber, "next-4");
    const { release } = await holdProofMarks(blockNumber);
    let answer: Awaited<ReturnType<typeof w.client.submitResult>> | undefined;
    let next: Awaited<ReturnType<typeof leasedRowOf>>;
    try {
      const answering = w.client.submitResult(a.id, proofOf(a), [], { next: true });
      void answering.then((x) => {
        answer = x;
      });
      // The next job is leased, its own mark written, while a's proof waits for its mark.
      next = await eventually(() => leasedRowOf(blockNumber, "next-4", a.id), 10_000);
      expect((await rowOf(a.id)).status).toBe("leased");
      expect(answer).toBeUndefined();
      await release();
      answer = await answering;
    } finally {
      await release();
    }
    // The answer carries that job once the proof's mark is in.
    expect(answer?.status).toBe("accepted");
    const carried = answer!.next!;
    expect(carried.id).toBe(next!.id);
    expect((await rowOf(a.id)).status).toBe("proven");
    await w.client.submitResult(carried.id, proofOf(carried));
    await proveUntilPaid(stack, blockNumber, [w.client]);
    await nothingHeldAgainst(blockNumber);
  });

  it("gives the next job straight back when the proof's mark fails after it was leased", async () => {
    const blockNumber = 5;
    const { w, a } = await oneLeased(blockNumber, "next-5");
    const { holder, release } = await holdProofMarks(blockNumber);
    try {
      const answering = relayError(w.client.submitResult(a.id, proofOf(a), [], { next: true }));
      answering.catch(() => {}); // awaited below, unless an earlier step fails
      await eventually(() => leasedRowOf(blockNumber, "next-5", a.id), 10_000);
      await cutMarkWaitingOn(holder);
      expect((await answering).status).toBeGreaterThanOrEqual(500);
    } finally {
      await release();
    }
    // The job leased for an answer that carried an error is free again at once (not by a lapse),
    // and nothing is held against the worker.
    await eventually(async () => (await stack.relay.ctx.broker.liveCount(w.sessionId)) === 0, 1500);
    await proveUntilPaid(stack, blockNumber, [w.client]);
    await nothingHeldAgainst(blockNumber);
  });

  it("accepts a result sent again after its proof's mark failed, for its own worker only", async () => {
    const blockNumber = 6;
    const { w, a } = await oneLeased(blockNumber, "next-6");
    const { holder, release } = await holdProofMarks(blockNumber);
    try {
      const answering = relayError(w.client.submitResult(a.id, proofOf(a)));
      answering.catch(() => {}); // awaited below, unless an earlier step fails
      // The job is completed in the fabric and its mark waits on the held row: the mark fails,
      // and the answer is an error although the proof was taken.
      await cutMarkWaitingOn(holder);
      expect((await answering).status).toBeGreaterThanOrEqual(500);
    } finally {
      await release();
    }
    // The worker agent sends a result again after an error: the proof is its own and stands,
    // so the answer says so (not "lease lost, nothing credited") and carries the next job, and
    // the job's row records the proof.
    const again = await w.client.submitResult(a.id, proofOf(a), [], { next: true });
    expect(again.status).toBe("accepted");
    const b = again.next!;
    expect(b).toMatchObject({ blockNumber, type: "base" });
    expect(await w.client.submitResult(b.id, proofOf(b))).toEqual({ status: "accepted" });
    await eventually(async () => (await rowOf(a.id)).status === "proven");
    expect(await rowOf(a.id)).toMatchObject({ workerId: "next-6", operator: op.address });
    // Anyone else, or another proof, is still refused, with nothing charged.
    const other = await signIn(stack, op, "next-6b", { capacity: 1 });
    expect(await relayError(other.client.submitResult(a.id, proofOf(a)))).toMatchObject({
      status: 409,
      code: "LEASE_LOST",
    });
    expect(await relayError(w.client.submitResult(a.id, `0x${"00".repeat(32)}`))).toMatchObject({
      status: 409,
      code: "LEASE_LOST",
    });
    await proveUntilPaid(stack, blockNumber, [w.client, other.client]);
    await nothingHeldAgainst(blockNumber);
  });
});
