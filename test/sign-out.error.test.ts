// A worker agent stopping while its long poll is open, on real Redis and Postgres: the relay may
// answer with a job just as the stop cuts the poll short, after the answer was handed to the
// socket, so the relay cannot tell the worker never read it. The agent signs out once it has
// stopped (DELETE /v1/workers/sessions/current), and the relay gives back every lease the session
// still holds: the job is back in its queue at once, not lapsed as a withholding of an operator
// who only stopped its agent. A sign-out gives back only its own session's leases (not another
// session's of the same worker id), within the bound of a stopping worker's releases, and the
// session takes no new lease afterwards, on any relay.
import { RelayClient } from "@prover-boost/sdk";
import { simBackend, startWorkers } from "@prover-boost/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRelay, type Relay } from "../apps/relay/src/index.ts";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, relayError, signIn } from "./support/blocks.ts";

const OP_KEY = 0x5160;
const op = account(OP_KEY);
const PENALTY = 10n ** 15n;
let stack: Stack;
/** A second relay on the same database and Redis prefix. */
let other: { relay: Relay; client: RelayClient };

beforeAll(async () => {
  // Leases far longer than any wait here: a job comes back only if something gives it back.
  stack = await startStack({
    env: { RATE_LIMIT_PER_IP: "0", LEASE_MS: "60000", WITHHOLD_PENALTY_WEI: PENALTY.toString() },
  });
  await stack.admin.deposit(op.address, 10n ** 18n);
  const relay = await createRelay(stack.relay.env, { db: stack.db });
  await relay.app.listen({ port: 0, host: "127.0.0.1" });
  const address = relay.app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  other = { relay, client: new RelayClient({ baseUrl: `http://127.0.0.1:${port}` }) };
});
afterAll(async () => {
  await other?.relay.close();
  await stack?.close();
});

const fast = simBackend({
  durationsMs: { base: 5, merge: 5, block_root: 5, single_tx_block_root: 5, empty_block_root: 5 },
});

const jobRow = (id: string) =>
  stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id }, select: { status: true } });

describe("a worker signing out", () => {
  it("gives back the job the relay leased as the agent's stop cut its long poll short", async () => {
    await openBlock(stack, 1, { txCount: 1, winner: op });
    // The agent's network: the relay's answer to its first lease request with a job is read in
    // full (the relay handed it to the socket), then lost to the stop, which aborts the request.
    let leasedId: string | null = null;
    let cutAnswer: () => void = () => {};
    const answered = new Promise<void>((resolve) => {
      cutAnswer = resolve;
    });
    const network: typeof fetch = async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (leasedId !== null || !url.endsWith("/v1/jobs/lease")) return fetch(input, init);
      const res = await fetch(input, { ...init, signal: null });
      const text = await res.text();
      if (res.status !== 200) return new Response(text || null, res);
      leasedId = (JSON.parse(text) as { job: { id: string } }).job.id;
      const stop = init!.signal!;
      cutAnswer();
      await new Promise((resolve) => stop.addEventListener("abort", resolve, { once: true }));
      throw stop.reason;
    };
    const pool = await startWorkers({
      relayUrl: stack.url,
      operatorKey: `0x${OP_KEY.toString(16).padStart(64, "0")}`,
      workers: 1,
      waitMs: 5000,
      namePrefix: "stopping",
      backend: fast,
      fetch: network,
    });
    // Stopped at once: the lease's row may not say "leased" yet (it is written after the
    // answer); the relay finds the lease in Redis.
    await answered;
    await pool.stop();
    // Back in its queue at once (its lease had a minute left), for the next worker.
    const next = await signIn(stack, op, "next");
    const again = await eventually(() => next.client.lease(1000), 5000);
    expect(again.id).toBe(leasedId);
    expect(await stack.db.prisma.penalty.count()).toBe(0);
    await next.client.submitResult(again.id, proofOf(again));
  });

  it("gives back its own session's leases only, but for those it keeps, and leases nothing after", async () => {
    // Three base jobs: one for the other session, two for this one, none left over.
    await openBlock(stack, 2, { txCount: 3, winner: op });
    const before = await signIn(stack, op, "same", { capacity: 1 });
    const kept = await eventually(() => before.client.lease(1000));
    // The same worker id signed in again (a new session), holding two leases, one heartbeated.
    const w = await signIn(stack, op, "same", { capacity: 2 });
    const heard = await eventually(() => w.client.lease(1000));
    await w.client.heartbeat(heard.id);
    const unheard = await eventually(() => w.client.lease(1000));
    // Its row as if its record had failed to be written (the view of Postgres): it is found in
    // Redis all the same.
    await eventually(async () => (await jobRow(unheard.id)).status === "leased");
    await stack.db.prisma.proofJob.update({
      where: { id: unheard.id },
      data: { status: "queued" },
    });
    // Signed out keeping the job it runs: the other goes back, the kept one is still held.
    expect(await w.client.endSession({ keep: [heard.id] })).toEqual({
      sessionId: w.sessionId,
      released: 1,
    });
    expect((await w.client.heartbeat(heard.id)).leaseExpiresAt).toBeGreaterThan(Date.now());
    // The ended session takes no new lease; signed out again keeping nothing, it gives that one
    // back too. The other session's lease is still held.
    expect(await relayError(w.client.lease(0))).toEqual({ status: 401, code: "SESSION_EXPIRED" });
    expect(await w.client.endSession()).toEqual({ sessionId: w.sessionId, released: 1 });
    await eventually(async () => (await jobRow(heard.id)).status === "queued");
    expect((await before.client.heartbeat(kept.id)).leaseExpiresAt).toBeGreaterThan(Date.now());
    expect(await w.client.endSession()).toEqual({ sessionId: w.sessionId, released: 0 });
    expect(await stack.db.prisma.penalty.count()).toBe(0);
    // Its jobs go to the next worker.
    const next = await signIn(stack, op, "next2", { capacity: 2 });
    const taken = [
      (await eventually(() => next.client.lease(1000))).id,
      (await eventually(() => next.client.lease(1000))).id,
    ].sort();
    expect(taken).toEqual([heard.id, unheard.id].sort());
  });

  it("takes no lease on another relay, even one that still has the session cached", async () => {
    const w = await signIn(stack, op, "cached");
    const elsewhere = other.client.withToken(w.token);
    // Seen by the other relay (a call that leases nothing): the session is in its cache.
    expect(await relayError(elsewhere.heartbeat("nope"))).toEqual({
      status: 404,
      code: "JOB_NOT_FOUND",
    });
    expect(await w.client.endSession()).toEqual({ sessionId: w.sessionId, released: 0 });
    await openBlock(stack, 3, { txCount: 1, winner: op });
    // A job is ready (another worker leases it and gives it back), but not for the signed-out
    // session, on either relay.
    const next = await signIn(stack, op, "after-cached");
    const job = await eventually(() => next.client.lease(1000));
    await next.client.failJob(job.id, "test", true, { shutdown: true });
    expect(await relayError(elsewhere.lease(1000))).toEqual({
      status: 401,
      code: "SESSION_EXPIRED",
    });
    expect(await eventually(() => next.client.lease(1000))).toHaveProperty("id");
  });

  it("is refused without a session token, and with a token of no session", async () => {
    expect(await relayError(stack.client.endSession())).toEqual({
      status: 401,
      code: "UNAUTHORIZED",
    });
    const unknown = stack.client.withToken("x".repeat(43));
    expect(await relayError(unknown.endSession())).toEqual({ status: 401, code: "UNAUTHORIZED" });
  });
});
