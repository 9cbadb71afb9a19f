// A worker session past its expiry, on real Redis and Postgres: it may still finish the leases it
// holds (heartbeat, result) for one more session lifetime, so the job in flight at expiry is not
// lost; but it takes no new lease (neither by a lease request, nor with a result's `next`, nor at
// the end of a long poll it began while it was live), and after that bounded time it is refused
// altogether.
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, relayError, signIn, tryLease } from "./support/blocks.ts";

const TTL_MS = 1500;
const operator = privateKeyToAccount(`0x${"71".repeat(32)}`);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { SESSION_TTL_MS: String(TTL_MS) } });
}, 60_000);
afterAll(async () => {
  await stack?.close();
});

it("takes no new lease when its session expires during a long poll", async () => {
  const w = await signIn(stack, operator, "polling", { capacity: 1 });
  // Nothing to lease yet: the poll waits past the session's expiry, then work arrives.
  const poll = tryLease(w.client, 10_000);
  await pause(TTL_MS + 300);
  await openBlock(stack, 2, { txCount: 4 });
  expect(await poll).toEqual({ status: 204 });
}, 30_000);

it("lets an expired session finish the leases it holds for a bounded time, but take no new one", async () => {
  await openBlock(stack, 1, { txCount: 8 });
  const w = await signIn(stack, operator, "expiring", { capacity: 3 });
  const leaseOne = async () => {
    const r = await tryLease(w.client, 0);
    if (!("job" in r)) throw new Error(`expected a job, got ${JSON.stringify(r)}`);
    return r.job;
  };
  const first = await leaseOne();
  const second = await leaseOne();
  await pause(TTL_MS + 300); // the session has expired

  // No new lease, by a lease request...
  expect(await tryLease(w.client, 0)).toEqual({ status: 401, code: "SESSION_EXPIRED" });
  // ...but the leases it holds are kept and handed in, and a result brings no next job.
  await w.client.heartbeat(second.id);
  await w.client.heartbeat(first.id);
  const answer = await w.client.submitResult(first.id, proofOf(first), [], { next: true });
  expect(answer?.next ?? null).toBeNull();
  expect(await tryLease(w.client, 0)).toEqual({ status: 401, code: "SESSION_EXPIRED" });

  // One session lifetime after expiry, the session is refused for everything.
  await pause(TTL_MS + 300);
  expect(await relayError(w.client.heartbeat(second.id))).toEqual({
    status: 401,
    code: "SESSION_EXPIRED",
  });
}, 30_000);
