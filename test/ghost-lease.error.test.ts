// A worker that goes away during a long poll, on real Redis and Postgres: the relay must not
// lease it the job that becomes ready meanwhile. Such a lease would never be heard of, would lapse
// after LEASE_MS, and would be recorded as withholding against an honest operator (a worker
// restart, a shutdown or a proxy timeout during a poll). The job must stay free for others.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, proveUntilPaid, signIn } from "./support/blocks.ts";

describe("a worker that disconnects during a long poll", () => {
  const op = account(0x6a1);
  const blockNumber = 1;
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({
      env: { LEASE_MS: "1000", WITHHOLD_PENALTY_WEI: "5", RATE_LIMIT_PER_IP: "0" },
    });
    await stack.admin.deposit(op.address, 10n ** 18n);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("is leased nothing: the job goes to another worker at once, and nobody is penalized", async () => {
    const gone = await signIn(stack, op, "gone", { capacity: 2 });
    // A long poll with nothing ready yet, given up by the client before any job is.
    const abort = new AbortController();
    const poll = fetch(`${stack.url}/v1/jobs/lease`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${gone.token}` },
      body: JSON.stringify({ waitMs: 20_000 }),
      signal: abort.signal,
    }).catch(() => null);
    await new Promise((r) => setTimeout(r, 300));
    abort.abort();
    expect(await poll).toBeNull();
    // Jobs become ready after the client left.
    await openBlock(stack, blockNumber, { txCount: 2, winner: op });
    const other = await signIn(stack, op, "other", { capacity: 2 });
    const first = (await other.client.lease(0))!;
    const second = (await other.client.lease(0))!;
    expect(first).toBeTruthy();
    expect(second).toBeTruthy();
    expect(new Set([first.id, second.id])).toEqual(
      new Set([`${blockNumber}-1-0`, `${blockNumber}-1-1`]),
    );
    // Nothing is held for the worker that left, and nothing lapses later.
    expect(await stack.relay.ctx.broker.liveCount(gone.sessionId)).toBe(0);
    await other.client.submitResult(first.id, proofOf(first));
    await other.client.submitResult(second.id, proofOf(second));
    await proveUntilPaid(stack, blockNumber, [other.client]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await stack.db.prisma.penalty.count()).toBe(0);
    await eventually(async () => (await stack.client.getBlock(blockNumber)).stage === "paid");
  });
});
