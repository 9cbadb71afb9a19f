// Lease attempts in turns, on real Redis and Postgres: a lease's clock starts at its grant, so a
// relay runs at most LEASE_CONCURRENCY attempts at once and every other long poll waits its turn
// before the grant. A tree fanned out to many waiting workers still leases each of them a job.
import type { LeasedJob } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, proveUntilPaid, signIn } from "./support/blocks.ts";

const WORKERS = 12;
let stack: Stack;
const op = account(0x9a7e);

beforeAll(async () => {
  stack = await startStack({
    env: { LEASE_CONCURRENCY: "2", LEASE_MS: "60000", RATE_LIMIT_PER_IP: "0" },
  });
  await stack.admin.deposit(op.address, 10n ** 18n);
});
afterAll(async () => stack?.close());

describe("lease attempts", () => {
  it("run at most LEASE_CONCURRENCY at once, and every waiting worker is leased a job", async () => {
    const workers = await Promise.all(
      Array.from({ length: WORKERS }, (_, i) => signIn(stack, op, `gate-${i}`)),
    );
    // Count the broker's lease attempts under way at once.
    const broker = stack.relay.ctx.broker;
    const original = broker.getProvingJob.bind(broker);
    let inFlight = 0;
    let most = 0;
    broker.getProvingJob = async (...args: Parameters<typeof original>) => {
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        return await original(...args);
      } finally {
        inFlight--;
      }
    };
    try {
      // Everyone long-polls first; then a tree of 16 base jobs wakes them all at once.
      const polls = workers.map((w) => w.client.lease(20_000));
      await openBlock(stack, 1, { txCount: 16, winner: op });
      const leased = (await Promise.all(polls)) as (LeasedJob | null)[];
      expect(leased.every((j) => j !== null)).toBe(true);
      expect(new Set(leased.map((j) => j!.id)).size).toBe(WORKERS);
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(2);
      for (const [i, j] of leased.entries())
        await workers[i]!.client.submitResult(j!.id, proofOf(j!));
    } finally {
      broker.getProvingJob = original;
    }
    await proveUntilPaid(
      stack,
      1,
      workers.map((w) => w.client),
    );
  });
});
