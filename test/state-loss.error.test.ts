// Redis losing the proof fabric, on real Redis and Postgres. The winner's workers have proven
// part of a block when Redis loses the tree (every key of the stack's prefix, or only one of the
// block's queues) or becomes unreachable to the aggregator for longer than the proof window.
// The aggregator rebuilds the tree from Postgres (accepted proofs kept, only unproven nodes
// queued again, the rebuilt parents carrying their proven children's proofs), the winner's
// workers finish, nobody is penalized or slashed, and the block is paid exactly once.
import { createAggregator } from "@prover-boost/aggregator";
import { aggregatorEnv, parseEnv } from "@prover-boost/config";
import { deleteKeysWithPrefix } from "@prover-boost/queue";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type Stack, startStack, TEST_REDIS_URL } from "./harness.ts";
import { openBlock, proofOf, proveUntilPaid, relayError, signIn } from "./support/blocks.ts";
import { testDomainEnv } from "./support/domain.ts";
import { startFaultProxy } from "./support/fault-proxy.ts";
import { holdLeaseRecords } from "./support/lease-records.ts";
import {
  BIDDING_MS,
  checkChildren,
  DEPOSIT,
  expectPaidOnceNoPenalty,
  opA,
  provenRows,
  proveSome,
  TXS,
} from "./support/state-loss.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});

async function stackWithWinner(
  opts: { aggregator?: boolean; leaseMs?: number } = {},
): Promise<Stack> {
  const stack = await startStack({
    aggregator: opts.aggregator,
    env: { LEASE_MS: String(opts.leaseMs ?? 2000) },
  });
  cleanups.push(() => stack.close());
  await stack.admin.deposit(opA.address, DEPOSIT);
  return stack;
}

/** Another aggregator on the stack's database and prefix, reaching Redis at `redisUrl`. */
async function extraAggregator(
  stack: Stack,
  redisUrl: string,
  log?: NonNullable<Parameters<typeof createAggregator>[1]>["log"],
  leaseMs = 2000,
) {
  const env = parseEnv(aggregatorEnv, {
    REDIS_URL: redisUrl,
    REDIS_PREFIX: stack.prefix,
    LEASE_MS: String(leaseMs),
    AGGREGATOR_TICK_MS: "50",
    ...testDomainEnv,
  });
  const agg = await createAggregator(env, { db: stack.db, ...(log ? { log } : {}) });
  cleanups.push(() => agg.close());
  return agg;
}

describe("Redis loses the fabric mid-proving", () => {
  it("rebuilds a tree whose keys are all gone; the winner finishes and is paid once", async () => {
    const BLOCK = 301;
    const stack = await stackWithWinner();
    // A second aggregator on the same database and prefix races the first one's rebuild.
    const second = await extraAggregator(stack, TEST_REDIS_URL);
    second.aggregator.start();

    const open = await openBlock(stack, BLOCK, {
      winner: opA,
      txCount: TXS,
      biddingMs: BIDDING_MS,
    });
    const w1 = await signIn(stack, opA, "a-1", { capacity: 2 });
    const w2 = await signIn(stack, opA, "a-2");
    await proveSome([w1.client, w2.client], 5);
    // The next lease's record is held in the relay, on its way to Postgres, until the tree is
    // rebuilt.
    const release = holdLeaseRecords(stack);
    cleanups.push(async () => release());
    const held = await eventually(() => w1.client.lease(500));
    const kept = await provenRows(stack, BLOCK);
    expect(kept.length).toBeGreaterThanOrEqual(5);

    const redis = new Redis(TEST_REDIS_URL);
    await deleteKeysWithPrefix(redis, stack.prefix);
    redis.disconnect();

    // The lease died with Redis: its result is refused, and it is not held against anyone.
    expect((await relayError(w1.client.submitResult(held.id, proofOf(held)))).code).toBe(
      "LEASE_LOST",
    );
    // Its record, arriving after the rebuild, is refused: the node stays queued.
    await eventually(async () => {
      const b = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: BLOCK } });
      return b.fabricJobs !== null;
    }, 30_000);
    release();
    await eventually(async () => stack.relay.ctx.leaseMarks.size === 0);
    const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: held.id } });
    expect(row.status).toBe("queued");
    await proveUntilPaid(
      stack,
      BLOCK,
      [w1.client, w2.client],
      checkChildren(BLOCK, open.txs),
      60_000,
    );
    await expectPaidOnceNoPenalty(stack, BLOCK, kept);
    const block = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: BLOCK } });
    // Rebuilt with at most the nodes unproven at the loss (fewer if a tick rebuilt it again
    // after the keys' removal had finished and more proofs were in).
    expect(block.fabricJobs).toBeGreaterThan(0);
    expect(block.fabricJobs).toBeLessThanOrEqual(block.jobsTotal - kept.length);
    expect(block.fabricDownSince).toBeNull();
  }, 120_000);

  it("rebuilds a tree that lost one of its queues (the base jobs)", async () => {
    const BLOCK = 302;
    const stack = await stackWithWinner();
    const open = await openBlock(stack, BLOCK, {
      winner: opA,
      txCount: TXS,
      biddingMs: BIDDING_MS,
    });
    const w1 = await signIn(stack, opA, "a-1");
    const w2 = await signIn(stack, opA, "a-2");
    // Bases only, so merges are waiting on base jobs that are about to vanish.
    await proveSome([w1.client, w2.client], 3);
    const kept = await provenRows(stack, BLOCK);

    const redis = new Redis(TEST_REDIS_URL);
    await deleteKeysWithPrefix(redis, `${stack.prefix}:b${BLOCK}-base`);
    redis.disconnect();

    await proveUntilPaid(
      stack,
      BLOCK,
      [w1.client, w2.client],
      checkChildren(BLOCK, open.txs),
      60_000,
    );
    await expectPaidOnceNoPenalty(stack, BLOCK, kept);
  }, 120_000);
});

describe("a lease lost with the queues it was in", () => {
  it("is never judged again: a later lapse of the rebuilt job charges only its own lessee", async () => {
    const BLOCK = 303;
    const stack = await startStack({
      env: { LEASE_MS: "1000", WITHHOLD_PENALTY_WEI: "7", RATE_LIMIT_PER_IP: "0" },
    });
    cleanups.push(() => stack.close());
    await stack.admin.deposit(opA.address, DEPOSIT);
    await openBlock(stack, BLOCK, { winner: opA, txCount: 2, biddingMs: BIDDING_MS });
    // The honest worker holds a base job, heartbeating, when the block's base queue is lost.
    const honest = await signIn(stack, opA, "honest");
    const held = (await eventually(() => honest.client.lease(1000)))!;
    const redis = new Redis(TEST_REDIS_URL);
    await deleteKeysWithPrefix(redis, `${stack.prefix}:b${BLOCK}-base`);
    redis.disconnect();
    // Rebuilt: its heartbeat says the lease is gone, and it drops the job, as it must.
    expect(
      await eventually(() => relayError(honest.client.heartbeat(held.id)).catch(() => null)),
    ).toEqual({ status: 409, code: "LEASE_LOST" });
    // Another worker takes the rebuilt job and lets it lapse (it withheld).
    const other = await signIn(stack, opA, "withholder");
    let again = null;
    while (!again) {
      const job = await eventually(() => other.client.lease(1000));
      if (job.id === held.id) again = job;
    }
    const penalties = () =>
      stack.db.prisma.penalty.findMany({ where: { blockNumber: BLOCK, kind: "withholding" } });
    await eventually(async () => (await penalties()).length > 0);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await penalties()).map((p) => p.workerId)).toEqual(["withholder"]);
  }, 60_000);
});

describe("two aggregators noticing the same loss at once", () => {
  it("rebuild the tree once and credit the outage once", async () => {
    const BLOCK = 304;
    const stack = await stackWithWinner();
    const open = await openBlock(stack, BLOCK, {
      winner: opA,
      txCount: TXS,
      biddingMs: BIDDING_MS,
    });
    const w1 = await signIn(stack, opA, "a-1");
    await proveSome([w1.client], 3);
    await stack.aggregator.aggregator.stop();
    const kept = await provenRows(stack, BLOCK);

    const rebuilds: unknown[] = [];
    const log = {
      info() {},
      error() {},
      warn(obj: object, msg?: string) {
        if (msg?.startsWith("proof tree lost")) rebuilds.push(obj);
      },
    };
    stack.aggregator.ctx.log = log;
    const second = await extraAggregator(stack, TEST_REDIS_URL, log);

    const redis = new Redis(TEST_REDIS_URL);
    await deleteKeysWithPrefix(redis, stack.prefix);
    redis.disconnect();
    const keepers = [stack.aggregator.aggregator.keeper, second.aggregator.keeper];
    // Twice each, at once (again if a busy machine made the fabric look down to all of them).
    await eventually(async () => {
      await Promise.all([...keepers, ...keepers].map((k) => k.run()));
      return rebuilds.length > 0;
    });
    expect(rebuilds).toHaveLength(1);
    const block = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: BLOCK } });
    expect(block.fabricJobs).toBe(block.jobsTotal - kept.length);
    expect(await second.ctx.fabric.treeJobs(BLOCK)).toBe(block.fabricJobs);
    const credited = block.fabricDownMs;
    await Promise.all(keepers.map((k) => k.run()));
    const again = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: BLOCK } });
    expect(again.fabricDownMs).toBe(credited);
    expect(rebuilds).toHaveLength(1);

    second.aggregator.start();
    await proveUntilPaid(stack, BLOCK, [w1.client], checkChildren(BLOCK, open.txs), 60_000);
    await expectPaidOnceNoPenalty(stack, BLOCK, kept);
  }, 120_000);
});

describe("the aggregator cannot reach Redis for longer than the proof window", () => {
  it.each([
    { fault: "cut" as const, BLOCK: 303 },
    { fault: "stall" as const, BLOCK: 306 },
  ])(
    "($fault) slashes nobody and extends the deadline by the outage; the winner then finishes",
    async ({ fault, BLOCK }) => {
      const WINDOW_MS = BIDDING_MS + 10_000;
      // No lease is held across the outage, so leases need not be short here; a longer LEASE_MS
      // gives the relay's presence (refreshed every LEASE_MS / 4, fresh for twice that) room on a
      // busy machine, where the aggregator would otherwise see the relay absent and keep the
      // outage open by design.
      const LEASE_MS = 6000;
      const stack = await stackWithWinner({ aggregator: false, leaseMs: LEASE_MS });
      const proxy = await startFaultProxy(TEST_REDIS_URL);
      cleanups.push(() => proxy.close());
      // What the aggregator says, kept to explain a wait that runs out.
      const said: string[] = [];
      const note = (level: string) => (obj: { err?: unknown }, msg?: string) =>
        said.push(`${Date.now()} ${level} ${msg ?? ""} ${obj?.err ? String(obj.err) : ""}`);
      const agg = await extraAggregator(
        stack,
        proxy.url,
        { info: note("info"), warn: note("warn"), error: note("error") },
        LEASE_MS,
      );
      agg.aggregator.start();

      const open = await openBlock(stack, BLOCK, {
        winner: opA,
        txCount: TXS,
        proofDeadlineInMs: WINDOW_MS,
      });
      const deadline = open.auction.proofDeadline;
      const w1 = await signIn(stack, opA, "a-1");
      const w2 = await signIn(stack, opA, "a-2");
      await proveSome([w1.client, w2.client], 2);
      const kept = await provenRows(stack, BLOCK);

      // cut: connections reset and refused (Redis down); stall: bytes held (a hung link).
      if (fault === "cut") proxy.cut();
      else proxy.stall();
      const cutAt = Date.now();
      const prisma = stack.db.prisma;
      await eventually(async () => {
        const b = await prisma.block.findUniqueOrThrow({ where: { number: BLOCK } });
        return b.fabricDownSince !== null;
      });
      // Past the deadline, with the fabric still out of the aggregator's sight: no slash.
      await eventually(async () => Date.now() > deadline + 1500, WINDOW_MS + 30_000, 200);
      expect((await stack.client.getBlock(BLOCK)).stage).toBe("proving");
      proxy.restore();
      const restoredAt = Date.now();

      // The aggregator sees the fabric again: it credits the outage (or, without that, slashes).
      // Credited is the cut's length added to the block's deadline: an outage opened again right
      // after (the relay seen absent on a busy machine) does not take that back.
      const outageMs = deadline + 1500 - cutAt;
      const back = await eventually(async () => {
        const b = await prisma.block.findUniqueOrThrow({ where: { number: BLOCK } });
        const credited = Number(b.fabricDownMs) >= outageMs;
        return credited || b.stage !== "proving" ? b : null;
      }, 60_000).catch((err) => {
        throw new Error(
          `${String(err)}; restored at ${restoredAt}; the aggregator said:\n${said.slice(-40).join("\n")}`,
        );
      });
      expect(back.stage).toBe("proving");
      expect(await prisma.penalty.findMany({ where: { blockNumber: BLOCK } })).toEqual([]);

      await proveUntilPaid(
        stack,
        BLOCK,
        [w1.client, w2.client],
        checkChildren(BLOCK, open.txs),
        60_000,
      );
      await expectPaidOnceNoPenalty(stack, BLOCK, kept);
    },
    200_000,
  );
});

describe("a winner still silent after an outage", () => {
  it("is slashed at the auction's deadline plus the outage, not before", async () => {
    const BLOCK = 305;
    const CREDIT = 6000n;
    const stack = await stackWithWinner();
    const open = await openBlock(stack, BLOCK, {
      winner: opA,
      txCount: TXS,
      biddingMs: BIDDING_MS,
      proofDeadlineInMs: BIDDING_MS + 6000,
    });
    const deadline = BigInt(open.auction.proofDeadline);
    // The block's view tells watchers the deadline in force: the auction's, plus what is credited
    // (here, the time from the bidding's close to the fan-out).
    const credited = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: BLOCK } });
    const view = await stack.client.getBlock(BLOCK);
    expect([view.proofDeadline, view.deadlinePaused]).toEqual([
      Number(deadline + credited.fabricDownMs),
      false,
    ]);
    // As if the fabric had been out for CREDIT ms while the block was being proven.
    await stack.db.prisma.block.update({
      where: { number: BLOCK },
      data: { fabricDownMs: CREDIT },
    });
    expect((await stack.client.getBlock(BLOCK)).proofDeadline).toBe(Number(deadline + CREDIT));
    await eventually(async () => BigInt(Date.now()) > deadline + 1000n, 30_000, 100);
    expect((await stack.client.getBlock(BLOCK)).stage).toBe("proving");

    const block = await eventually(async () => {
      const b = await stack.client.getBlock(BLOCK);
      return b.stage === "open_proving" ? b : null;
    }, 60_000);
    expect(BigInt(block.stages.deadline_missed!)).toBeGreaterThanOrEqual(deadline + CREDIT);
    const slashes = await stack.db.prisma.penalty.findMany({
      where: { blockNumber: BLOCK, kind: "slash" },
    });
    expect(slashes).toHaveLength(1);
  }, 120_000);
});
