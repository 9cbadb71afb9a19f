// Bounded retryable fails, on real Redis and Postgres. A worker may hand one job back (fail,
// retryable) MAX_RETRYABLE_FAILS_PER_WORKER times (default 3); after that it is not offered that
// job again, by this relay or any other on the same Redis, while other workers still are. A
// non-retryable fail bars the worker at once, which bounds the open-proving re-issue loop. The
// counts live under the block's Redis keys and go when the paid block is retired.
import { parseEnv, relayEnv } from "@prover-boost/config";
import { createRelay, type Relay } from "@prover-boost/relay";
import { RelayClient } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import {
  ADMIN_TOKEN,
  eventually,
  type Stack,
  sequencer,
  startStack,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
} from "./harness.ts";
import {
  bullState,
  expectedRoot,
  lapseLease,
  openBlock,
  proofOf,
  proveUntilPaid,
  relayError,
  signIn,
  tryLease,
} from "./support/blocks.ts";
import { testDomainEnv } from "./support/domain.ts";

const LEASE_MS = "30000";
let stack: Stack;
const op = account(0xfb1);
const outsider = account(0xfb2);

beforeAll(async () => {
  stack = await startStack({ env: { LEASE_MS, RATE_LIMIT_PER_IP: "0" } });
  await stack.admin.deposit(op.address, 100_000n);
  await stack.admin.deposit(outsider.address, 100_000n);
});
afterAll(async () => stack?.close());

/** A second relay on the same Redis prefix and database, as another process would be. */
async function secondRelay(): Promise<{ relay: Relay; url: string }> {
  const env = parseEnv(relayEnv, {
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: stack.prefix,
    SEQUENCERS: sequencer.address,
    ADMIN_TOKEN,
    LEASE_MS,
    RATE_LIMIT_PER_IP: "0",
    OPEN_PROVING_MIN_COLLATERAL: "0",
    INVALID_PROOF_PENALTY_WEI: "0",
    ...testDomainEnv,
  });
  const relay = await createRelay(env, { db: stack.db });
  await relay.app.listen({ port: 0, host: "127.0.0.1" });
  const address = relay.app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { relay, url: `http://127.0.0.1:${port}` };
}

describe("retryable fails per worker", () => {
  it("after 3 hand-backs the worker is not offered the job again; another worker gets it", async () => {
    const blockNumber = 1;
    // 2 txs: block_root(0,0) <- base(1,0), base(1,1).
    const { txs } = await openBlock(stack, blockNumber, { txCount: 2, winner: op });
    expect((await stack.client.info()).maxRetryableFailsPerWorker).toBe(3);
    const flaky = await signIn(stack, op, "flaky", { capacity: 2 });
    const steady = await signIn(stack, op, "steady");

    const job = (await flaky.client.lease(2000))!;
    // A handed-back job goes to the front of its priority band: the same worker gets it again.
    for (const retriesLeft of [2, 1]) {
      expect(await flaky.client.failJob(job.id, "out of memory", true)).toEqual({
        status: "requeued",
        retriesLeft,
      });
      expect((await flaky.client.lease(2000))!.id).toBe(job.id);
    }
    expect(await flaky.client.failJob(job.id, "out of memory", true)).toEqual({
      status: "requeued",
      retriesLeft: 0,
    });

    // The job is ready, but not for this worker: it gets the other base, then nothing.
    const other = (await flaky.client.lease(2000))!;
    expect(other.id).not.toBe(job.id);
    expect(other.level).toBe(job.level);
    expect(await tryLease(flaky.client, 500)).toEqual({ status: 204 });
    expect(await bullState(stack, blockNumber, job.type, job.id)).toBe("prioritized");
    const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(row.status).toBe("queued");
    // Holding no lease on it, it can neither fail nor prove it.
    expect(await relayError(flaky.client.failJob(job.id, "again", true))).toEqual({
      status: 409,
      code: "LEASE_LOST",
    });
    expect(await relayError(flaky.client.submitResult(job.id, proofOf(job)))).toEqual({
      status: 409,
      code: "LEASE_LOST",
    });

    // The bar lives in Redis: a second relay process on the same Redis keeps it too.
    const second = await secondRelay();
    try {
      const viaSecond = new RelayClient({ baseUrl: second.url, token: flaky.token });
      expect(await tryLease(viaSecond, 300)).toEqual({ status: 204 });
    } finally {
      await second.relay.close();
    }

    // Another worker of the same operator is offered it.
    const taken = (await steady.client.lease(2000))!;
    expect(taken.id).toBe(job.id);
    await steady.client.submitResult(taken.id, proofOf(taken));
    await flaky.client.submitResult(other.id, proofOf(other));
    expect(
      await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job.id } }),
    ).toMatchObject({ status: "proven", workerId: "steady" });

    // The bar is per job: the flaky worker still gets the root.
    const root = (await flaky.client.lease(2000))!;
    expect(root.level).toBe(0);
    await flaky.client.submitResult(root.id, proofOf(root));
    const block = await proveUntilPaid(stack, blockNumber, [flaky.client]);
    expect(block.rootProof).toBe(expectedRoot(blockNumber, txs));

    // Once the paid block is retired, its attempt counts are gone from Redis.
    const key = stack.relay.ctx.fabric.attempts.key(blockNumber);
    await eventually(async () => (await stack.relay.ctx.fabric.redis.exists(key)) === 0);
  });
});

describe("non-retryable fails in open proving", () => {
  it("bars the failing worker, so the re-issued job goes to another worker", async () => {
    const blockNumber = 3;
    const { txs } = await openBlock(stack, blockNumber, { txCount: 2 });
    const first = await signIn(stack, outsider, "open-first", { capacity: 2 });
    const second = await signIn(stack, outsider, "open-second");
    const job = (await first.client.lease(2000))!;
    expect(await first.client.failJob(job.id, "bad witness", false)).toEqual({ status: "failed" });
    // The aggregator re-issues it (open proving has no deadline to wait for), but not to the
    // worker that said it cannot prove it: that one gets only the other base.
    await eventually(async () => {
      const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job.id } });
      return row.status === "queued";
    });
    const other = (await first.client.lease(2000))!;
    expect(other.id).not.toBe(job.id);
    expect(await tryLease(first.client, 300)).toEqual({ status: 204 });
    const again = (await second.client.lease(2000))!;
    expect(again.id).toBe(job.id);
    await second.client.submitResult(again.id, proofOf(again));
    await first.client.submitResult(other.id, proofOf(other));
    const block = await proveUntilPaid(stack, blockNumber, [first.client, second.client]);
    expect(block.rootProof).toBe(expectedRoot(blockNumber, txs));
  });
});

describe("lapses count toward the bound", () => {
  const lapser = account(0xfb3);
  let s: Stack;

  beforeAll(async () => {
    s = await startStack({
      env: {
        LEASE_MS: "1000",
        MAX_RETRYABLE_FAILS_PER_WORKER: "2",
        WITHHOLD_PENALTY_WEI: "1",
        RATE_LIMIT_PER_IP: "0",
      },
    });
    await s.admin.deposit(lapser.address, 100_000n);
  });
  afterAll(async () => s?.close());

  it("a worker that lets one job lapse twice is not offered it again; another worker is", async () => {
    const blockNumber = 1;
    // One transaction: a base job under a root, so the base is the only job ever ready at first.
    await openBlock(s, blockNumber, { txCount: 1, winner: lapser });
    const w = await signIn(s, lapser, "lapser");
    const baseId = `${blockNumber}-1-0`;
    const worker = `${lapser.address.toLowerCase()}/lapser`;
    for (const lapses of [1, 2]) {
      // Leased (again, once the previous lease lapsed and its capacity slot freed), then silent.
      const job = await eventually(async () => {
        const r = await tryLease(w.client, 500);
        return "job" in r ? r.job : null;
      });
      expect(job.id).toBe(baseId);
      await eventually(
        async () =>
          (await s.relay.ctx.fabric.attempts.fails(blockNumber, baseId, worker)) === lapses,
      );
    }
    // Barred now: nothing for this worker, even once its capacity is free again.
    expect(await tryLease(w.client, 1500)).toEqual({ status: 204 });
    // Another worker of the operator gets the job at once, and the block completes.
    const other = await signIn(s, lapser, "other");
    const job = (await other.client.lease(2000))!;
    expect(job.id).toBe(baseId);
    await other.client.submitResult(job.id, proofOf(job));
    await proveUntilPaid(s, blockNumber, [other.client]);
    const penalties = await s.db.prisma.penalty.findMany({ where: { blockNumber } });
    expect(penalties.map((p) => [p.jobId, p.workerId, p.kind])).toEqual([
      [baseId, "lapser", "withholding"],
      [baseId, "lapser", "withholding"],
    ]);
  });
  it("a heartbeat that comes after the lapse does not keep it from being recorded", async () => {
    const blockNumber = 2;
    await openBlock(s, blockNumber, { txCount: 1, winner: lapser });
    const w = await signIn(s, lapser, "late");
    const job = (await w.client.lease(2000))!;
    // The lapse, made deterministic: BullMQ's lock (the lease itself) is gone, and the worker's
    // heartbeat arrives before the stalled checker has found the job.
    const onTime = await lapseLease(s, job.id);
    try {
      expect(await relayError(w.client.heartbeat(job.id))).toEqual({
        status: 409,
        code: "LEASE_LOST",
      });
    } finally {
      onTime();
    }
    const penalties = await eventually(async () => {
      const rows = await s.db.prisma.penalty.findMany({ where: { blockNumber } });
      return rows.length > 0 ? rows : null;
    });
    expect(penalties.map((p) => [p.jobId, p.workerId, p.kind])).toEqual([
      [job.id, "late", "withholding"],
    ]);
    const finisher = await signIn(s, lapser, "finisher");
    await proveUntilPaid(s, blockNumber, [finisher.client]);
  });
  it("a lapsed lease's hand-back is refused and does not count", async () => {
    const blockNumber = 3;
    await openBlock(s, blockNumber, { txCount: 2, winner: lapser });
    const w = await signIn(s, lapser, "lapsing");
    const job = (await w.client.lease(2000))!;
    // A lapse (LEASE_MS passed in silence), before the stalled checker has found it.
    const fabric = s.relay.ctx.fabric;
    const bull = (await fabric.getJob(blockNumber, "base", job.id))!;
    const onTime = await lapseLease(s, job.id);
    expect(await bull.isActive()).toBe(true);
    try {
      expect(await relayError(w.client.failJob(job.id, "too late", true))).toEqual({
        status: 409,
        code: "LEASE_LOST",
      });
    } finally {
      onTime();
    }
    // The lapse itself is withholding and counts once, when it is claimed; the refused
    // hand-back adds nothing.
    const worker = `${lapser.address.toLowerCase()}/lapsing`;
    await eventually(async () => (await fabric.attempts.fails(blockNumber, job.id, worker)) === 1);
    await new Promise((r) => setTimeout(r, 500));
    expect(await fabric.attempts.fails(blockNumber, job.id, worker)).toBe(1);
  });
});

describe("a lapse's cool-down", () => {
  const silent = account(0xfb4);
  let s: Stack;

  beforeAll(async () => {
    // Long enough a cool-down (LEASE_MS) that the checks below run well inside it.
    s = await startStack({ env: { LEASE_MS: "3000", RATE_LIMIT_PER_IP: "0" } });
    await s.admin.deposit(silent.address, 100_000n);
  });
  afterAll(async () => s?.close());

  it("keeps the worker whose lease lapsed off that job while another worker takes it", async () => {
    const blockNumber = 1;
    await openBlock(s, blockNumber, { txCount: 1, winner: silent });
    const w = await signIn(s, silent, "silent");
    const other = await signIn(s, silent, "other");
    const job = (await w.client.lease(2000))!;
    const worker = `${silent.address.toLowerCase()}/silent`;
    await eventually(
      async () => (await s.relay.ctx.fabric.attempts.fails(blockNumber, job.id, worker)) === 1,
    );
    // The job is ready again, but not for the worker that let it lapse (not barred for good:
    // one lapse is below the bound).
    expect(await tryLease(w.client, 0)).toEqual({ status: 204 });
    const taken = (await other.client.lease(0))!;
    expect(taken.id).toBe(job.id);
    await other.client.submitResult(taken.id, proofOf(taken));
    await proveUntilPaid(s, blockNumber, [other.client]);
  });
});
