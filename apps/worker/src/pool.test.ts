// The pool against an in-memory fake of the relay's worker endpoints (the real relay is covered
// by the end-to-end tests). Bounds on time are generous; nothing asserts exact timing.
import { simProof } from "@prover-boost/core";
import type { LeasedJob } from "@prover-boost/sdk";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterEach, describe, expect, it } from "vitest";
import { simBackend } from "./backends/sim.ts";
import { BackendError } from "./errors.ts";
import { startWorkers } from "./pool.ts";
import { baseJobs, FakeRelay } from "./testing/fake-relay.ts";
import { sleep } from "./timing.ts";
import type { ProofBackend, WorkerEvent, WorkerOptions, WorkerPool } from "./types.ts";

const key: Hex = `0x${"42".repeat(32)}`;
const operator = privateKeyToAccount(key).address;
const fast = simBackend({
  durationsMs: { base: 5, merge: 5, block_root: 5, single_tx_block_root: 5, empty_block_root: 5 },
});

let pools: WorkerPool[] = [];
afterEach(async () => {
  await Promise.all(pools.map((p) => p.stop({ graceMs: 0 })));
  pools = [];
});

async function start(relay: FakeRelay, opts: Partial<WorkerOptions> = {}) {
  const events: WorkerEvent[] = [];
  const pool = await startWorkers({
    relayUrl: "http://relay.test",
    operatorKey: key,
    workers: 1,
    backend: fast,
    waitMs: 50,
    namePrefix: "t",
    fetch: relay.fetch,
    onEvent: (e) => events.push(e),
    ...opts,
  });
  pools.push(pool);
  return { pool, events };
}

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(10);
  }
}

/** A backend that proves only when released, and records the signals it was given. */
function gatedBackend() {
  const signals: AbortSignal[] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const backend: ProofBackend = {
    name: "gated",
    async prove(job: LeasedJob, signal: AbortSignal) {
      signals.push(signal);
      await new Promise<void>((resolve, reject) => {
        gate.then(resolve);
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
      return fast.prove(job, signal);
    },
  };
  return { backend, signals, release: () => release() };
}

describe("startWorkers", () => {
  it("signs in with a valid WorkerLogin and proves the queued jobs", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(5, 6));
    const { pool, events } = await start(relay, { workers: 2, capacity: 2, jobTypes: ["base"] });
    await until(() => relay.accepted.size === 6);
    for (const job of baseJobs(5, 6)) {
      expect(relay.accepted.get(job.id)).toBe(
        simProof({ ...job, children: job.children.map((c) => c.proof) }),
      );
    }
    const sessions = [...relay.sessions.values()];
    const logins = sessions.map((s) => s.login);
    expect(logins.map((l) => l.workerId).sort()).toEqual(["t-0", "t-1"]);
    expect(logins[0]).toMatchObject({ operator, capacity: 2, jobTypes: ["base"], tier: 0 });
    // Each login carries its own fresh nonce.
    expect(new Set(logins.map((l) => l.nonce)).size).toBe(2);
    expect(sessions[0]!.hardware.cores).toBeGreaterThan(0);
    expect(pool.stats()).toEqual({ leased: 6, proven: 6, failed: 0, rejected: 0, lost: 0 });
    expect(events.filter((e) => e.type === "proven")).toHaveLength(6);
  });

  it("runs `capacity` jobs at once per worker", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(1, 3));
    const gated = gatedBackend();
    await start(relay, { capacity: 3, backend: gated.backend });
    await until(() => gated.signals.length === 3);
    expect(relay.maxConcurrentLeases).toBe(3);
    gated.release();
    await until(() => relay.accepted.size === 3);
  });

  it("heartbeats while proving and keeps retrying while the relay is down", async () => {
    const relay = new FakeRelay(operator);
    relay.down = true;
    const slow = simBackend({ durationsMs: { base: 400 } });
    const { pool, events } = await start(relay, { backend: slow });
    await until(() => events.filter((e) => e.type === "relay_error").length >= 2);
    relay.add(...baseJobs(2, 1));
    relay.down = false;
    await until(() => relay.accepted.size === 1);
    expect(relay.heartbeats.length).toBeGreaterThanOrEqual(1);
    expect(pool.stats().proven).toBe(1);
  });

  it("keeps a lease whose answer came late: the first heartbeat comes before its deadline", async () => {
    const relay = new FakeRelay(operator);
    // A heartbeat every 1,000 ms, but the lease answer leaves only 600 ms of the lease.
    relay.info.leaseMs = 3000;
    relay.grantMs = 600;
    relay.add(...baseJobs(9, 1));
    const { pool } = await start(relay, { backend: simBackend({ durationsMs: { base: 1500 } }) });
    await until(() => pool.stats().proven + pool.stats().lost === 1);
    expect(pool.stats()).toMatchObject({ proven: 1, lost: 0 });
    expect(relay.heartbeats.length).toBeGreaterThanOrEqual(1);
  });

  it("gives up a heartbeat the relay never answers and sends another before the lease runs out", async () => {
    const relay = new FakeRelay(operator);
    // A heartbeat every 2 s of a 6 s lease the relay enforces; the first is never answered (the
    // client's own deadline is 15 s, past the lease).
    relay.info.leaseMs = 6000;
    relay.grantMs = 6000;
    relay.hangHeartbeats = 1;
    relay.add(...baseJobs(9, 1));
    const { pool } = await start(relay, { backend: simBackend({ durationsMs: { base: 7000 } }) });
    await until(() => pool.stats().proven + pool.stats().lost === 1, 30_000);
    expect(relay.hangHeartbeats).toBe(0);
    expect(relay.heartbeats.length).toBeGreaterThanOrEqual(1);
    expect(pool.stats()).toMatchObject({ proven: 1, lost: 0 });
  }, 40_000);

  // The relay's clock (Redis's) 10 s ahead, in the second: its lease ends look 13 s away.
  it.each([0, 10_000])(
    "sends no heartbeat beside a result on its way but in the lease's last period, on its own clock (relay's ahead by %i ms)",
    async (clockAheadMs) => {
      const relay = new FakeRelay(operator); // leaseMs 300: a heartbeat every 100 ms
      relay.info.leaseMs = 3000; // a heartbeat every 1000 ms
      relay.clockAheadMs = clockAheadMs;
      let release: () => void = () => {};
      relay.holdResults = new Promise<void>((r) => {
        release = r;
      });
      relay.add(...baseJobs(10, 1));
      const { pool } = await start(relay);
      await until(() => relay.resultsRead === 1);
      const before = relay.heartbeats.length;
      // The result held (read and not answered, or never read: the worker cannot tell): nothing
      // beside it while the lease has more than a period left ...
      await until(() => relay.heartbeats.length > before);
      expect(relay.heartbeatLeaseLeft[before]).toBeGreaterThan(0);
      expect(relay.heartbeatLeaseLeft[before]).toBeLessThanOrEqual(1000);
      // ... then heartbeats keep the lease, whatever became of the result.
      await until(() => relay.heartbeats.length > before + 1);
      expect(relay.heartbeatLeaseLeft[before + 1]).toBeGreaterThan(0);
      expect(relay.heartbeatLeaseLeft[before + 1]).toBeLessThanOrEqual(1000);
      relay.holdResults = undefined;
      release();
      await until(() => relay.accepted.size === 1);
      expect(pool.stats()).toMatchObject({ proven: 1, lost: 0 });
    },
  );

  it("heartbeats again while it waits to send a refused result again", async () => {
    const relay = new FakeRelay(operator); // leaseMs 300: a heartbeat every 100 ms
    // Two 503s: the result is sent again after backoffs of at least 100 and 200 ms.
    relay.faults.push({ route: /result$/, status: 503, code: "UNAVAILABLE", times: 2 });
    relay.add(...baseJobs(11, 1));
    const { pool } = await start(relay);
    await until(() => relay.accepted.size === 1);
    expect(pool.stats()).toMatchObject({ proven: 1, lost: 0 });
    expect(relay.heartbeats.length).toBeGreaterThanOrEqual(1);
  });

  it("offers a proof waiting to be sent again once more when stopped, rather than release it", async () => {
    const relay = new FakeRelay(operator);
    // A busy relay: the result is to come back in 30 s. The worker stops long before that.
    relay.faults.push({ route: /result$/, status: 503, code: "UNAVAILABLE", retryAfterS: 30 });
    relay.add(...baseJobs(16, 1));
    const { pool, events } = await start(relay);
    await until(() => events.some((e) => e.type === "relay_error" && e.op === "result"));
    await pool.stop({ graceMs: 0 });
    // Handed in, not thrown away (nor released, which would have been a lost lease had the
    // relay taken the first).
    expect(relay.accepted.size).toBe(1);
    expect(relay.fails).toEqual([]);
    expect(pool.stats()).toMatchObject({ proven: 1, lost: 0 });
  });

  it("offers no proof again when it stops for proofs refused as invalid", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(17, 4));
    // 17:0's result is to come back in 30 s; every other result is refused as invalid.
    relay.faults.push(
      { route: /\/17:0\/result$/, status: 503, code: "UNAVAILABLE", retryAfterS: 30 },
      { route: /result$/, status: 422, code: "INVALID_PROOF", times: 100 },
    );
    const { pool, events } = await start(relay, { capacity: 2 });
    await until(() => events.some((e) => e.type === "stopped"));
    // The third refusal stopped the agent: 17:0's proof, waiting to be sent again, was not
    // offered (it would have been one more penalty) but released.
    expect(pool.stats().rejected).toBe(3);
    expect(relay.fails).toContainEqual(expect.objectContaining({ id: "17:0", shutdown: true }));
  });

  it("sends a result again after a heartbeat says the lease ended, when the relay completed the job", async () => {
    const relay = new FakeRelay(operator); // leaseMs 300: a heartbeat every 100 ms
    // The relay completes the job, then answers 503 twice: heartbeats between the sends get 409.
    relay.faults.push({
      route: /result$/,
      status: 503,
      code: "UNAVAILABLE",
      times: 2,
      completes: true,
    });
    relay.add(...baseJobs(12, 1));
    const { pool } = await start(relay);
    await until(() => relay.accepted.size === 1);
    expect(pool.stats()).toMatchObject({ proven: 1, lost: 0 });
    expect(relay.heartbeatsAfterCompletion).toBeGreaterThanOrEqual(1);
  });

  it("retries a result the relay could not take (5xx)", async () => {
    const relay = new FakeRelay(operator);
    relay.faults.push({ route: /result$/, status: 503, code: "UNAVAILABLE", times: 2 });
    relay.add(...baseJobs(3, 1));
    const { pool } = await start(relay);
    await until(() => relay.accepted.size === 1);
    expect(pool.stats()).toMatchObject({ proven: 1, lost: 0 });
  });

  it("aborts the proving and drops the job when a heartbeat says the lease is lost", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(4, 1));
    relay.stealOnHeartbeat.add("4:0");
    const gated = gatedBackend();
    const { pool } = await start(relay, { backend: gated.backend });
    await until(() => pool.stats().lost === 1);
    expect(gated.signals[0]!.aborted).toBe(true);
    expect(relay.accepted.size).toBe(0);
    expect(relay.fails).toHaveLength(0);
  });

  it("counts a 422 result as rejected and a 409 result as lost", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(6, 2));
    relay.faults.push({ route: /\/6:0\/result$/, status: 422, code: "INVALID_PROOF" });
    relay.faults.push({ route: /\/6:1\/result$/, status: 409, code: "LEASE_LOST" });
    const { pool } = await start(relay);
    // The rejected job goes back to the queue (as on the relay) and is proven on the next try.
    await until(() => relay.accepted.has("6:0"));
    expect(pool.stats()).toMatchObject({ leased: 3, rejected: 1, lost: 1, proven: 1 });
    expect(relay.accepted.has("6:1")).toBe(false);
  });

  it("stops after MAX_REJECTIONS proofs in a row are rejected, each a penalty", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(13, 6));
    relay.faults.push({ route: /result$/, status: 422, code: "INVALID_PROOF", times: 100 });
    const { pool, events } = await start(relay, { workers: 2 });
    await until(() => events.some((e) => e.type === "stopped"));
    const fatal = events.find((e) => e.type === "fatal");
    expect(fatal).toMatchObject({ op: "result" });
    expect((fatal as { message: string }).message).toContain("3 proofs in a row were rejected");
    // The third stops the pool; the other worker's result on its way may still be refused.
    expect(pool.stats().rejected).toBeGreaterThanOrEqual(3);
    expect(pool.stats().rejected).toBeLessThanOrEqual(4);
    expect(relay.accepted.size).toBe(0);
  });

  it("hands its jobs in flight back at once when it stops for a refusal, whatever stop its handler asks for", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(15, 6));
    relay.faults.push({ route: /result$/, status: 422, code: "INVALID_PROOF", times: 100 });
    // The first three jobs are proven (and refused); the rest are held until stopped.
    let proving = 0;
    const held = gatedBackend();
    const backend: ProofBackend = {
      name: "refused-then-held",
      prove: (job, signal) =>
        ++proving <= 3 ? fast.prove(job, signal) : held.backend.prove(job, signal),
    };
    let pool: WorkerPool | undefined;
    const events: WorkerEvent[] = [];
    pool = await startWorkers({
      relayUrl: "http://relay.test",
      operatorKey: key,
      workers: 1,
      capacity: 4,
      backend,
      waitMs: 50,
      namePrefix: "t",
      fetch: relay.fetch,
      // As the command line does: on a fatal event, stop with its usual drain (a long one here).
      onEvent: (e) => {
        events.push(e);
        if (e.type === "fatal") void pool?.stop({ graceMs: 60_000 });
      },
    });
    pools.push(pool);
    await until(() => events.some((e) => e.type === "stopped"));
    expect(events.find((e) => e.type === "fatal")).toMatchObject({ op: "result" });
    // The held jobs were released, not proven and refused one after another.
    expect(held.signals.length).toBeGreaterThan(0);
    expect(held.signals.every((s) => s.aborted)).toBe(true);
    expect(pool.stats().rejected).toBe(3);
    expect(relay.fails.filter((f) => f.shutdown).length).toBe(held.signals.length);
  });

  it("counts rejections in a row only: an accepted proof starts the count again", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(14, 4));
    // One worker takes the jobs in queue order, and a refused job goes back to the queue's end:
    // 14:0 refused, 14:1 refused, 14:2 accepted, 14:3 refused, 14:0 refused, then all accepted.
    relay.faults.push(
      { route: /\/14:0\/result$/, status: 422, code: "INVALID_PROOF", times: 2 },
      { route: /\/14:1\/result$/, status: 422, code: "INVALID_PROOF" },
      { route: /\/14:3\/result$/, status: 422, code: "INVALID_PROOF" },
    );
    const { pool, events } = await start(relay, { maxRejections: 3 });
    await until(() => relay.accepted.size === 4);
    expect(pool.stats().rejected).toBe(4);
    expect(events.some((e) => e.type === "fatal")).toBe(false);
  });

  it("hands a job back with failJob when the backend throws", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(7, 2));
    const backend: ProofBackend = {
      name: "broken",
      async prove(job) {
        if (job.id === "7:0") throw new Error("GPU fell off the bus");
        throw new BackendError("inputs are malformed", false);
      },
    };
    const { pool } = await start(relay, { backend });
    await until(() => relay.fails.length >= 2);
    const byId = new Map(relay.fails.map((f) => [f.id, f]));
    expect(byId.get("7:0")).toMatchObject({ retryable: true });
    expect(byId.get("7:0")!.reason).toContain("GPU fell off the bus");
    expect(byId.get("7:1")).toMatchObject({ retryable: false });
    expect(pool.stats().failed).toBeGreaterThanOrEqual(2);
  });

  it("signs in again after a 401", async () => {
    const relay = new FakeRelay(operator);
    const { events } = await start(relay);
    await until(() => relay.sessions.size === 1);
    relay.expireSessions();
    await until(() => relay.sessions.size >= 2);
    relay.add(...baseJobs(8, 1));
    await until(() => relay.accepted.size === 1);
    expect(events.filter((e) => e.type === "signed_in").length).toBeGreaterThanOrEqual(2);
  });

  it("stop() lets an in-flight job finish within the grace period", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(9, 1));
    const gated = gatedBackend();
    const { pool } = await start(relay, { backend: gated.backend, waitMs: 10_000 });
    await until(() => gated.signals.length === 1);
    const stopped = pool.stop({ graceMs: 10_000 });
    await sleep(50);
    gated.release();
    await stopped;
    expect(relay.accepted.size).toBe(1);
    expect(relay.fails).toHaveLength(0);
  });

  it("stop() hands back jobs that outlast the grace period, and returns promptly", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(10, 2));
    const gated = gatedBackend();
    const { pool, events } = await start(relay, {
      backend: gated.backend,
      capacity: 2,
      waitMs: 10_000,
    });
    await until(() => gated.signals.length === 2);
    const started = Date.now();
    await pool.stop({ graceMs: 100 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(relay.fails.map((f) => f.reason)).toEqual([
      "worker shutting down",
      "worker shutting down",
    ]);
    expect(relay.fails.every((f) => f.retryable)).toBe(true);
    expect(relay.queue).toHaveLength(2);
    expect(events.at(-1)).toMatchObject({ type: "stopped" });
    const requests = relay.requests;
    await sleep(200);
    expect(relay.requests).toBe(requests);
  });

  it("takes the next job with each result: one lease request for a run of jobs", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(11, 6));
    const { pool } = await start(relay, { waitMs: 10_000 });
    await until(() => relay.accepted.size === 6);
    expect(relay.leasedWithResult).toBe(5);
    // The first job's lease, then the long poll after the last result found nothing.
    expect(relay.leaseRequests).toBeLessThanOrEqual(2);
    expect(pool.stats()).toEqual({ leased: 6, proven: 6, failed: 0, rejected: 0, lost: 0 });
  });

  it("leases as usual when a result brings no next job", async () => {
    const relay = new FakeRelay(operator);
    relay.refuseNext = true;
    relay.add(...baseJobs(12, 3));
    const { pool } = await start(relay);
    await until(() => relay.accepted.size === 3);
    expect(relay.leasedWithResult).toBe(0);
    expect(relay.leaseRequests).toBeGreaterThanOrEqual(3);
    expect(pool.stats()).toMatchObject({ leased: 3, proven: 3, lost: 0 });
  });

  it("hands back a job leased in a lease answer it cannot read, and proves it later", async () => {
    const relay = new FakeRelay(operator);
    relay.unreadableLeases = 1;
    relay.add(...baseJobs(14, 2));
    const { pool } = await start(relay, { waitMs: 10_000 });
    await until(() => relay.accepted.size === 2);
    expect(relay.fails).toHaveLength(1);
    expect(relay.fails[0]).toMatchObject({ id: "14:0", retryable: true, shutdown: false });
    expect(relay.fails[0]!.reason).toMatch(/the lease's answer could not be read: .*proofSystem/);
    expect(pool.stats()).toMatchObject({ proven: 2, lost: 0, rejected: 0 });
    expect(relay.leases.size).toBe(0);
  });

  it("stops after 3 jobs in a row leased in answers it cannot read, each handed back", async () => {
    const relay = new FakeRelay(operator);
    relay.unreadableLeases = 100;
    relay.add(...baseJobs(16, 2));
    const { pool, events } = await start(relay, { waitMs: 10_000 });
    await until(() => events.some((e) => e.type === "stopped"));
    const fatal = events.find((e) => e.type === "fatal");
    expect((fatal as { message: string }).message).toContain(
      "3 jobs in a row were leased in answers this agent cannot read",
    );
    // Each handed back: the last one perhaps by the sign-out the stop begins with.
    const released = relay.signOuts.reduce((n, o) => n + o.released, 0);
    expect(relay.fails.length + released).toBe(3);
    expect(relay.leases.size).toBe(0);
    expect(pool.stats()).toMatchObject({ proven: 0, lost: 0 });
  });

  it("counts a result answered accepted as proven, and hands back the next job it cannot read", async () => {
    const relay = new FakeRelay(operator);
    relay.unreadableNext = 1;
    relay.add(...baseJobs(15, 2));
    const { pool, events } = await start(relay, { waitMs: 10_000 });
    await until(() => relay.accepted.size === 2);
    expect(relay.leasedWithResult).toBeGreaterThanOrEqual(1);
    // The first result's next job (15:1) came unreadable: handed back, then leased and proved.
    expect(relay.fails).toHaveLength(1);
    expect(relay.fails[0]).toMatchObject({ id: "15:1", retryable: true });
    // The first result counted once: not sent again, not lost.
    expect(events.filter((e) => e.type === "relay_error" && e.op === "result")).toHaveLength(0);
    expect(pool.stats()).toMatchObject({ proven: 2, lost: 0, rejected: 0 });
    expect(relay.leases.size).toBe(0);
  });

  it("stop() hands back a next job that came with a result sent before stopping", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(13, 2));
    let release: () => void = () => {};
    relay.holdResults = new Promise<void>((r) => {
      release = r;
    });
    const { pool, events } = await start(relay, { waitMs: 10_000 });
    await until(() => relay.resultsRead === 1);
    const stopped = pool.stop({ graceMs: 10_000 });
    await sleep(50);
    release();
    await stopped;
    expect(relay.accepted.size).toBe(1);
    expect(relay.leasedWithResult).toBe(1);
    // The job that came with the answer went straight back, as a shutdown, never proven.
    expect(relay.fails).toEqual([
      {
        id: baseJobs(13, 2)[1]!.id,
        reason: "worker shutting down",
        retryable: true,
        shutdown: true,
      },
    ]);
    expect(relay.queue.map((j) => j.id)).toEqual([baseJobs(13, 2)[1]!.id]);
    expect(relay.leases.size).toBe(0);
    expect(events.at(-1)).toMatchObject({ type: "stopped" });
  });

  it("stop() does not wait for a pending long poll", async () => {
    const relay = new FakeRelay(operator);
    const { pool } = await start(relay, { workers: 2, waitMs: 30_000 });
    await until(() => relay.sessions.size === 2);
    await sleep(50);
    const started = Date.now();
    await pool.stop();
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("stop() signs out: a job the relay leased as the stop cut the long poll short goes back", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(14, 1));
    relay.answersLostToStop = 1;
    const { pool } = await start(relay, { waitMs: 10_000 });
    await until(() => relay.leases.size === 1);
    await pool.stop();
    // Back in the queue at once, not left to lapse as a withholding of this worker's.
    expect(relay.leases.size).toBe(0);
    expect(relay.queue.map((j) => j.id)).toEqual(["14:0"]);
    // At once as the stop began, and again (keeping nothing) once it had stopped.
    expect(relay.signOuts).toEqual([
      { sessionId: "session-0", kept: [], released: 1 },
      { sessionId: "session-0", kept: [], released: 0 },
    ]);
  });

  it("stop() signs out at once keeping the jobs still running, which it then hands in itself", async () => {
    const relay = new FakeRelay(operator);
    relay.add(...baseJobs(15, 1));
    const gated = gatedBackend();
    const { pool } = await start(relay, { backend: gated.backend, waitMs: 10_000 });
    await until(() => gated.signals.length === 1);
    const stopped = pool.stop({ graceMs: 10_000 });
    // Signed out before the drain is over, the running job kept.
    await until(() => relay.signOuts.length === 1);
    expect(relay.signOuts[0]).toEqual({ sessionId: "session-0", kept: ["15:0"], released: 0 });
    gated.release();
    await stopped;
    expect(relay.accepted.size).toBe(1);
    expect(relay.signOuts).toHaveLength(2);
  });

  it("stop() signs every worker out, even with nothing to give back", async () => {
    const relay = new FakeRelay(operator);
    const { pool } = await start(relay, { workers: 2, waitMs: 30_000 });
    await until(() => relay.sessions.size === 2);
    await pool.stop();
    expect(relay.signOuts.map((o) => o.released)).toEqual([0, 0, 0, 0]);
    expect(new Set(relay.signOuts.map((o) => o.sessionId)).size).toBe(2);
  });

  it("rejects bad options", async () => {
    const relay = new FakeRelay(operator);
    await expect(start(relay, { workers: 0 })).rejects.toThrow(/workers must be a positive/);
    await expect(start(relay, { capacity: 1.5 })).rejects.toThrow(/capacity/);
    await expect(start(relay, { operatorKey: "0x12" })).rejects.toThrow(/32-byte/);
    await expect(start(relay, { jobTypes: [] })).rejects.toThrow(/jobTypes/);
    await expect(start(relay, { waitMs: 40_000 })).rejects.toThrow(/waitMs/);
  });
});
