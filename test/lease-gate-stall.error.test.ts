// A lease attempt's wait for its turn has a deadline, on real Redis (through a link that stalls)
// and Postgres. While Redis stalls, every attempt under way waits out its commands' deadlines
// (REDIS_COMMAND_TIMEOUT_MS), and the long polls queued behind them (LEASE_CONCURRENCY at once)
// would wait for all of them in turn: minutes for a fleet of workers. A long poll whose turn has
// not come by its own deadline (at least GATE_WAIT_MIN_MS) is answered: no job.
import { GATE_WAIT_MIN_MS } from "@prover-boost/relay";
import { afterEach, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, startStack, TEST_REDIS_URL } from "./harness.ts";
import { signIn } from "./support/blocks.ts";
import { startFaultProxy } from "./support/fault-proxy.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});

const op = account(0x6a7e);

describe("a long poll queued behind an attempt stuck on a stalled Redis", () => {
  it("is answered (no job) once its deadline passes, while the stuck attempt still runs", async () => {
    const proxy = await startFaultProxy(TEST_REDIS_URL);
    cleanups.push(() => proxy.close());
    const stack = await startStack({
      aggregator: false,
      env: {
        REDIS_URL: proxy.url,
        LEASE_CONCURRENCY: "1",
        // The stuck attempt holds the only turn far longer than the queued poll may wait.
        REDIS_COMMAND_TIMEOUT_MS: "40000",
        RATE_LIMIT_PER_IP: "0",
      },
    });
    // Restored before the stack closes (its connections then drain); cleanups run last-first.
    cleanups.push(() => stack.close());
    cleanups.push(async () => proxy.restore());
    await stack.admin.deposit(op.address, 10n ** 18n);
    const stuck = await signIn(stack, op, "stuck");
    const queued = await signIn(stack, op, "queued");

    // Count the attempts that got their turn (each asks the broker for a job first).
    const broker = stack.relay.ctx.broker;
    const original = broker.getProvingJob.bind(broker);
    let attempts = 0;
    broker.getProvingJob = (...args: Parameters<typeof original>) => {
      attempts++;
      return original(...args);
    };
    cleanups.push(async () => {
      broker.getProvingJob = original;
    });

    proxy.stall();
    // The first attempt takes the only turn and waits on Redis (its client gives up first).
    const first = stuck.client.lease(0).catch((err: unknown) => err);
    await eventually(async () => attempts === 1);
    const gate = stack.relay.ctx.leaseGate;
    expect(gate.activeCount).toBe(1);

    const askedAt = Date.now();
    expect(await queued.client.lease(500)).toBeNull();
    const answeredAfter = Date.now() - askedAt;
    // Answered without a turn: the stuck attempt is still the only one that ran, and still runs.
    expect(attempts).toBe(1);
    expect(gate.activeCount).toBe(1);
    // Not before its own deadline, stretched to the gate's least wait.
    expect(answeredAfter).toBeGreaterThanOrEqual(GATE_WAIT_MIN_MS - 50);
    const metrics = await stack.relay.ctx.metrics.registry.metrics();
    expect(metrics).toMatch(/^prover_boost_lease_gate_gave_up_total 1$/m);

    proxy.restore();
    await first;
  }, 120_000);
});
