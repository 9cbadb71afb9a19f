// A relay that falls behind must not punish the workers it failed to serve, on real Redis and
// Postgres. Its lateness is simulated deterministically: the relay's overload signal is forced,
// or its event loop is blocked (a busy wait in this process, which runs the relay) between a
// heartbeat's arrival and its handling, for longer than the lease. Then:
// - new leases are refused with 503 UNAVAILABLE and Retry-After, while heartbeats and results
//   of leases already held still succeed;
// - a heartbeat (or a result) that arrived before its lease ran out counts: the lease is not
//   lapsed, nobody is penalized, and the worker's proof is accepted;
// - a lease that lapses after the relay was behind during its last window is forgiven (the
//   relay could not have heard its heartbeats on time), while a silent worker's lapse with the
//   relay on time is still withholding.
import type { IncomingMessage } from "node:http";
import type { QueueKind } from "@prover-boost/queue";
import type { LeasedJob } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import {
  bullState,
  lapseLease,
  openBlock,
  proofOf,
  type Signed,
  signIn,
} from "./support/blocks.ts";

const LEASE_MS = 500;
/**
 * How long the relay stays behind before a lapse it must forgive: more than the 2 s lapseLease
 * sets a lease's expiry back at most, plus a lease and the presence rule's slack.
 */
const BEHIND_FOR_MS = 3500;

let stack: Stack;
const op = account(0x0e1);
const lapsed: string[] = [];

beforeAll(async () => {
  stack = await startStack({
    // Shedding on (at a delay this test process never reaches unless the signal is forced).
    env: { LEASE_MS: String(LEASE_MS), WITHHOLD_PENALTY_WEI: "7", OVERLOAD_LAG_MS: "30000" },
  });
  await stack.admin.deposit(op.address, 1000n);
  stack.relay.ctx.fabric.events.on("stalled", (id: string) => lapsed.push(id));
});
afterAll(async () => stack?.close());

/** Blocks this process's event loop (and so the relay's) for `ms`. */
function busyWait(ms: number) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // spin: nothing else in this process runs meanwhile
  }
}

/**
 * Blocks the relay's loop for `ms` as soon as it has read the next request whose URL ends with
 * `suffix`, before it handles it (Node's "request" event runs ahead of Fastify's handling).
 */
function blockOnNextRequest(suffix: string, ms: number): void {
  const server = stack.relay.app.server;
  const listener = (req: IncomingMessage) => {
    if (!req.url?.endsWith(suffix)) return;
    server.off("request", listener);
    busyWait(ms);
  };
  server.prependListener("request", listener);
}

async function penalties() {
  return stack.db.prisma.penalty.count({
    where: { operator: { equals: op.address, mode: "insensitive" } },
  });
}

/** Extends a leased job's BullMQ lock by `ms` directly in Redis (no heartbeat, no record change). */
async function holdLock(jobId: string, ms: number): Promise<void> {
  const { broker, fabric } = stack.relay.ctx;
  const [lease] = await broker.recordsOf(jobId);
  if (!lease) throw new Error(`job ${jobId} is not leased`);
  await fabric.redis.pexpire(broker.lockKey(jobId, lease.queue as QueueKind), ms);
}

async function leaseOne(w: Signed): Promise<LeasedJob> {
  return eventually(() => w.client.lease(2000), 10_000, 0);
}

describe("an overloaded relay", () => {
  let w: Signed;
  let held: LeasedJob;

  beforeAll(async () => {
    await openBlock(stack, 1, { txCount: 4 });
    w = await signIn(stack, op, "shed-1", { capacity: 2 });
    held = await leaseOne(w);
  });
  afterAll(() => stack.relay.ctx.load.lag.force(null));

  it("refuses new leases with 503 UNAVAILABLE and Retry-After", async () => {
    stack.relay.ctx.load.lag.force(60_000);
    const res = await fetch(`${stack.url}/v1/jobs/lease`, {
      method: "POST",
      headers: { authorization: `Bearer ${w.token}`, "content-type": "application/json" },
      body: JSON.stringify({ waitMs: 0 }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    const body = (await res.json()) as { error: { code: string } };
    expect(body.error.code).toBe("UNAVAILABLE");
    // The SDK carries the Retry-After to the caller (the worker agent waits that long).
    const err = await w.client.lease(0).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: "UNAVAILABLE", retryAfterMs: 1000 });
  });

  it("still takes heartbeats and results of the leases it holds", async () => {
    stack.relay.ctx.load.lag.force(60_000);
    const hb = await w.client.heartbeat(held.id);
    expect(hb.leaseExpiresAt).toBeGreaterThanOrEqual(held.leaseExpiresAt);
    expect(await w.client.submitResult(held.id, proofOf(held))).toEqual({ status: "accepted" });
  });

  it("leases again once it has caught up", async () => {
    stack.relay.ctx.load.lag.force(null);
    stack.relay.ctx.load.lag.force(0);
    const job = await leaseOne(w);
    expect(job.id).not.toBe(held.id);
    await w.client.submitResult(job.id, proofOf(job));
  });
});

describe("a relay whose own loop was behind when a heartbeat arrived", () => {
  let w: Signed;

  beforeAll(async () => {
    stack.relay.ctx.load.lag.force(null);
    await openBlock(stack, 2, { txCount: 4 });
    w = await signIn(stack, op, "late-relay-1");
  });

  it("does not lapse a lease whose heartbeat arrived in time but was handled after it ran out", async () => {
    const job = await leaseOne(w);
    const before = await penalties();
    // The heartbeat arrives well inside the lease; the relay then stalls for three leases'
    // worth before handling it, so BullMQ's lock runs out in Redis meanwhile.
    blockOnNextRequest(`/v1/jobs/${job.id}/heartbeat`, 3 * LEASE_MS);
    const hb = await w.client.heartbeat(job.id);
    expect(hb.leaseExpiresAt).toBeGreaterThan(job.leaseExpiresAt);
    // Kept alive from here on, as an honest worker does.
    const timer = setInterval(() => void w.client.heartbeat(job.id).catch(() => {}), 100);
    try {
      // Several sweeps later, the lease is still the worker's: never lapsed, never penalized.
      await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
      expect(await bullState(stack, job.blockNumber, job.type, job.id)).toBe("active");
      expect(lapsed).not.toContain(job.id);
      expect(await w.client.submitResult(job.id, proofOf(job))).toEqual({ status: "accepted" });
    } finally {
      clearInterval(timer);
    }
    expect(await penalties()).toBe(before);
  });

  it("accepts a result that arrived in time but was handled after the lease ran out", async () => {
    const job = await leaseOne(w);
    const before = await penalties();
    blockOnNextRequest(`/v1/jobs/${job.id}/result`, 3 * LEASE_MS);
    expect(await w.client.submitResult(job.id, proofOf(job))).toEqual({ status: "accepted" });
    expect(lapsed).not.toContain(job.id);
    expect(await penalties()).toBe(before);
  });

  it("still lapses a lease whose worker stays silent (withholding)", async () => {
    const job = await leaseOne(w);
    await eventually(async () => lapsed.includes(job.id), 20_000);
    await eventually(async () => (await penalties()) > 0 || null, 20_000);
  });
});

describe("a relay that was behind through a lease's last window", () => {
  afterAll(() => stack.relay.ctx.load.lag.force(null));

  it("forgives the lapse: it could not have heard the worker's heartbeats on time", async () => {
    stack.relay.ctx.load.lag.force(null);
    await openBlock(stack, 3, { txCount: 4 });
    const w = await signIn(stack, op, "served-late-1");
    const job = await leaseOne(w);
    await w.client.heartbeat(job.id); // the worker heard of its lease
    const before = await penalties();
    await new Promise((r) => setTimeout(r, 5)); // after the renewal's millisecond (Redis's clock)
    // The relay falls behind (past OVERLOAD_LAG_MS) during the lease's window...
    stack.relay.ctx.load.lag.force(60_000);
    await stack.relay.ctx.broker.presence.refresh();
    // ...for longer than lapseLease sets the window back (its expiry 1-2 s before now, its start a
    // lease before that): the whole window then lies in the time the relay was behind, however
    // long the steps before took. (Without the wait, a slow machine could place the window in
    // the relay's stretch on time before it fell behind, where the lapse is withholding.) The
    // lock is held meanwhile, as the worker's heartbeats would hold it.
    await holdLock(job.id, 60_000);
    await new Promise((r) => setTimeout(r, BEHIND_FOR_MS));
    // ...and the lease runs out (lapseLease puts the relay back on time, so the sweep runs).
    await lapseLease(stack, job.id);
    await eventually(async () => lapsed.includes(job.id), 20_000);
    await eventually(
      async () =>
        (await stack.db.prisma.proofJob.findUnique({ where: { id: job.id } }))?.status === "queued",
      20_000,
    );
    expect(await penalties()).toBe(before);
    expect(await stack.db.prisma.penalty.count({ where: { workerId: "served-late-1" } })).toBe(0);
  });
});
