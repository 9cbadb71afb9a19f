// A worker cannot hold a job for ever by heartbeating it without proving it (a grief: in open
// proving, anyone with the collateral could sit on a block's root until its deadline). A lease is
// held at most LEASE_MAX_MS from its grant: heartbeats extend it up to there and are refused
// after, the lease runs out, its lapse is withholding like any other, and the job goes to someone
// else. On real Redis and Postgres.
import type { LeasedJob } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { keepAlive, openBlock, proofOf, relayError, signIn } from "./support/blocks.ts";

const LEASE_MS = 2000;
const LEASE_MAX_MS = 6000;

let stack: Stack;
const op = account(0x1ea5e);
const lapsed: string[] = [];

beforeAll(async () => {
  stack = await startStack({
    env: {
      LEASE_MS: String(LEASE_MS),
      LEASE_MAX_MS: String(LEASE_MAX_MS),
      WITHHOLD_PENALTY_WEI: "7",
      RATE_LIMIT_PER_IP: "0",
      // A loaded test machine must not make the relay count itself behind (which forgives lapses).
      OVERLOAD_LAG_MS: "30000",
    },
  });
  await stack.admin.deposit(op.address, 1000n);
  stack.relay.ctx.fabric.events.on("stalled", (id: string) => lapsed.push(id));
});
afterAll(async () => stack?.close());

const penalties = () =>
  stack.db.prisma.penalty.findMany({
    where: { operator: { equals: op.address, mode: "insensitive" } },
    select: { kind: true, jobId: true },
  });

describe("a lease heartbeated without end", () => {
  it("is held at most LEASE_MAX_MS, then lapses as withholding and the job goes to another worker", async () => {
    await openBlock(stack, 1, { txCount: 1 });
    const squatter = await signIn(stack, op, "squatter");
    const other = await signIn(stack, op, "other");
    const job = (await eventually(() => squatter.client.lease(2000), 10_000, 0)) as LeasedJob;
    const grantedAt = Date.now();
    const before = await penalties();
    // Heartbeats, five a lease, that never stop: no answer's expiry is past the limit from the
    // grant (the lease answer's expiry is the grant plus LEASE_MS, on Redis's clock).
    const limit = job.leaseExpiresAt - LEASE_MS + LEASE_MAX_MS;
    const expiries: number[] = [];
    const stop = keepAlive(squatter.client, job.id, LEASE_MS / 5);
    try {
      // Once the limit has passed, a heartbeat is refused, saying why.
      const refused = await eventually(async () => {
        const err = await squatter.client.heartbeat(job.id).then(
          (answer) => {
            expiries.push(answer.leaseExpiresAt);
            return null;
          },
          (e: unknown) => e as Error,
        );
        return err;
      }, 20_000);
      expect(expiries.length).toBeGreaterThan(10);
      // A heartbeat handled late keeps what was left when it arrived: the limit, plus at most
      // the time the relay took to handle it.
      expect(Math.max(...expiries)).toBeLessThanOrEqual(limit + LEASE_MS / 4);
      expect(Math.max(...expiries)).toBeGreaterThan(job.leaseExpiresAt + LEASE_MS);
      expect(String(refused)).toMatch(/409 LEASE_LOST: .*LEASE_MAX_MS \(6000 ms\)/);
      expect(Date.now() - grantedAt).toBeGreaterThanOrEqual(LEASE_MAX_MS - LEASE_MS);
      // The lease runs out and its lapse is withholding, like a silent worker's.
      await eventually(async () => lapsed.includes(job.id), 20_000);
      await eventually(async () => {
        const now = await penalties();
        return (
          now.length > before.length &&
          now.some((p) => p.jobId === job.id && p.kind === "withholding")
        );
      }, 20_000);
      // The job is another worker's now, and the squatter's result is refused.
      const again = (await eventually(() => other.client.lease(2000), 20_000, 0)) as LeasedJob;
      expect(again.id).toBe(job.id);
      expect(await relayError(squatter.client.submitResult(job.id, proofOf(job)))).toEqual({
        status: 409,
        code: "LEASE_LOST",
      });
      expect(await other.client.submitResult(again.id, proofOf(again))).toEqual({
        status: "accepted",
      });
    } finally {
      stop();
    }
  });
});
