// Resources stay flat over many blocks. A relay opens BullMQ handles (queues, and fetchers with a
// stalled-check timer each) for every block it serves; if they outlive the block, every block
// adds connections, Redis keeps running checks on removed queues (re-creating their keys), and a
// relay reaches Redis's connection limit within hours. Here 30 small blocks are driven to `paid`
// one after another against a private redis-server (so its figures are this stack's alone), and
// after each one the relay's and aggregator's connections, the keys left under the stack's
// prefix and the idle command rate must stay within 10 % of their value after the first block
// (the rate as a mean over five blocks: see the check below).
import { createAggregator } from "@prover-boost/aggregator";
import { aggregatorEnv, parseEnv } from "@prover-boost/config";
import { planTree } from "@prover-boost/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provideRedis, type RedisHandle } from "../apps/devnet/src/redis-server.ts";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proveUntilPaid, signIn } from "./support/blocks.ts";
import { testDomainEnv } from "./support/domain.ts";
import { driftFromFirst, type RedisUsage, RedisUsageProbe } from "./support/redis-usage.ts";

const BLOCKS = 30;

describe("resources over consecutive blocks", () => {
  let redis: RedisHandle;
  let stack: Stack;
  let probe: RedisUsageProbe;

  beforeAll(async () => {
    redis = await provideRedis(undefined);
    stack = await startStack({ env: { REDIS_URL: redis.url, LEASE_MS: "1500" } });
    probe = new RedisUsageProbe(redis.url, stack.prefix);
  });
  afterAll(async () => {
    probe?.close();
    await stack?.close();
    await redis?.stop();
  });

  it(`keeps connections, leftover keys and idle commands flat over ${BLOCKS} blocks`, async () => {
    const operator = account(71);
    const workers = [
      (await signIn(stack, operator, "w1")).client,
      (await signIn(stack, operator, "w2")).client,
    ];
    const samples: RedisUsage[] = [];
    const leftovers: string[] = [];
    for (let n = 1; n <= BLOCKS; n++) {
      // Open proving (no bids): any worker may prove it; 2 to 4 transactions.
      await openBlock(stack, n, { txCount: 2 + (n % 3) });
      await proveUntilPaid(stack, n, workers);
      // Each service closes a finished block's handles a moment after its last use.
      // Idle load comes in periodic bursts (ticks, presence refreshes, stalled checks): a window
      // of several seconds averages them out, where a short one counts a burst more or less.
      const usage = await probe.settle({
        windowMs: 4000,
        ready: () =>
          stack.relay.ctx.fabric.openHandles().blocks.length === 0 &&
          stack.aggregator.ctx.fabric.openHandles().blocks.length === 0,
      });
      samples.push(usage);
      // Nothing of a retired block may stay behind (its queues, books, stalled-check marks).
      leftovers.push(...(await probe.keyNames()).filter((k) => /:b\d+-/.test(k)));
    }
    // Connections: within 10 % of the first block's (exactly equal, at these sizes). Keys: one
    // more or less (a fixed-name key that comes once, such as the relays' past presence
    // stretches after a readiness check answered late, is no leak; a key left a block is: at
    // the third block it is two more).
    // The idle rate: five blocks' mean within 10 % of the first five's. Idle load is timers
    // (the aggregator's fabric probe, each relay's presence refresh), so one 4 s reading moves a
    // few percent with how late timers fire on a busy machine; the mean smooths that, and the
    // leak this guards against adds dozens of commands/s with every block.
    const drift = driftFromFirst(
      samples,
      0.1,
      { clients: 0, keys: 1, idleCommandsPerSec: 2 },
      { idleCommandsPerSec: 5 },
    );
    expect({ drift, leftovers }, JSON.stringify(samples)).toEqual({ drift: [], leftovers: [] });
  }, 900_000);

  // A crash between a payout and its retire leaves the block's queues in Redis; the next
  // aggregator to start removes them.
  it("retires, at start-up, a paid block whose queues were left in Redis", async () => {
    await stack.aggregator.ctx.fabric.addTree(
      1,
      planTree(2),
      () => 1,
      () => [],
    );
    const leftover = async () => (await probe.keyNames()).filter((k) => k.includes(":b1-"));
    expect((await leftover()).length).toBeGreaterThan(0);
    const restarted = await createAggregator(
      parseEnv(aggregatorEnv, {
        REDIS_URL: redis.url,
        REDIS_PREFIX: stack.prefix,
        ...testDomainEnv,
      }),
      { db: stack.db },
    );
    try {
      await eventually(async () => (await leftover()).length === 0);
    } finally {
      await restarted.close();
    }
  });

  // The aggregator announces a block as its tree is being added; the relay connects the block's
  // queues and fetchers then, so its first leases do not wait for them.
  it("opens a block's queues and fetchers as its tree is added, before any lease", async () => {
    const n = BLOCKS + 1;
    await openBlock(stack, n, { txCount: 4 });
    await eventually(async () => stack.relay.ctx.fabric.openHandles().blocks.includes(n));
    expect(stack.relay.ctx.fabric.openHandles()).toMatchObject({ queues: 3, fetchers: 3 });
    const worker = (await signIn(stack, account(72), "w1")).client;
    await proveUntilPaid(stack, n, [worker]);
    await eventually(async () => stack.relay.ctx.fabric.openHandles().blocks.length === 0);
  });
});
