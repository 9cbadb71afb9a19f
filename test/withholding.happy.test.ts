// Proof withholding on real Redis and Postgres: a worker leases a job and goes silent. When its
// lease lapses (LEASE_MS) the job is leased again by someone else, the withholder's operator is
// penalized WITHHOLD_PENALTY_WEI out of its available collateral, a late result from the
// withholder is refused with nothing credited, and the job is never failed: the tree completes
// and the block is paid.
import { accounts } from "@prover-boost/db";
import type { LeasedJob } from "@prover-boost/sdk";
import type { LocalAccount } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import {
  bullState,
  expectedProofs,
  expectedRoot,
  failedCount,
  keepAlive,
  openBlock,
  proofOf,
  proveUntilPaid,
  relayError,
  type Signed,
  signIn,
} from "./support/blocks.ts";
import { parseProm, sumOf } from "./support/prom-text.ts";

const PENALTY = 123n;
const DEPOSIT = 100_000n;

let stack: Stack;
const opA = account(0xa11);
const opB = account(0xb22);

beforeAll(async () => {
  stack = await startStack({ env: { LEASE_MS: "1000", WITHHOLD_PENALTY_WEI: String(PENALTY) } });
  await stack.admin.deposit(opA.address, DEPOSIT);
  await stack.admin.deposit(opB.address, DEPOSIT);
});
afterAll(async () => stack?.close());

async function penaltiesApi(operator: string, block?: number) {
  const qs = new URLSearchParams({
    operator,
    ...(block !== undefined ? { block: `${block}` } : {}),
  });
  const res = await fetch(`${stack.url}/v1/data/penalties?${qs}`);
  expect(res.status).toBe(200);
  return (
    (await res.json()) as {
      items: {
        blockNumber: number;
        jobId: string;
        operator: string;
        worker: string;
        kind: string;
        amount: string;
      }[];
    }
  ).items;
}

/** Leases and proves every other ready job until `waitFor` comes back; returns that lease. */
async function proveOthersUntil(w: Signed, waitFor: string): Promise<LeasedJob> {
  return eventually(
    async () => {
      const job = await w.client.lease(5000);
      if (!job) return null;
      if (job.id === waitFor) return job;
      await w.client.submitResult(job.id, proofOf(job));
      return null;
    },
    30_000,
    0,
  );
}

describe("a silent worker in open proving", () => {
  const blockNumber = 1;
  let txs: `0x${string}`[];
  let w1: Signed;
  let w2: Signed;
  let withheld: LeasedJob;
  let availableBefore: bigint;
  let stopW2Heartbeat = () => {};

  beforeAll(async () => {
    ({ txs } = await openBlock(stack, blockNumber, { txCount: 4 }));
    w1 = await signIn(stack, opA, "withholder-1");
    w2 = await signIn(stack, opB, "honest-2");
    availableBefore = BigInt((await stack.client.getProver(opA.address)).collateral.available);
    expect(availableBefore).toBe(DEPOSIT);
  });
  afterAll(() => stopW2Heartbeat());

  it("lets the job be leased by another operator's worker once the lease lapses", async () => {
    withheld = (await w1.client.lease(2000))!;
    expect(withheld).not.toBeNull();
    // The tree's record of a lease may be written just after the lease is answered.
    await eventually(async () => {
      const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: withheld.id } });
      return (
        row.status === "leased" && row.operator === opA.address && row.workerId === "withholder-1"
      );
    }, 5000);

    // W2 proves whatever else is ready and long-polls until the withheld job is back.
    const again = await proveOthersUntil(w2, withheld.id);
    // W2 is honest: it heartbeats while it proves (until it hands the proof in below).
    stopW2Heartbeat = keepAlive(w2.client, again.id);
    expect(again.id).toBe(withheld.id);
    expect(again.leaseExpiresAt).toBeGreaterThan(withheld.leaseExpiresAt);
    // Same job, same inputs.
    expect(again.inputs).toEqual(withheld.inputs);
    expect(again.children).toEqual(withheld.children);
    const relet = await eventually(async () => {
      const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: withheld.id } });
      return row.operator === opB.address ? row : null;
    }, 5000);
    expect(relet).toMatchObject({ operator: opB.address, workerId: w2.workerId, proof: null });
    // Withholding does not fail the job: BullMQ has it active again (W2's lease).
    expect(await bullState(stack, blockNumber, withheld.type, withheld.id)).toBe("active");
    expect(await failedCount(stack, blockNumber)).toBe(0);
  });

  it("records a withholding penalty of WITHHOLD_PENALTY_WEI against A and W1", async () => {
    const items = await eventually(async () => {
      const list = await penaltiesApi(opA.address);
      return list.length > 0 ? list : null;
    });
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      blockNumber,
      jobId: withheld.id,
      operator: opA.address,
      worker: w1.workerId,
      kind: "withholding",
      amount: PENALTY.toString(),
    });
    const rows = await stack.db.prisma.penalty.findMany({ where: { jobId: withheld.id } });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      operator: opA.address,
      workerId: w1.workerId,
      kind: "withholding",
      blockNumber,
    });
    expect(rows[0]!.amount.toFixed()).toBe(PENALTY.toString());
    // Nobody else was penalized.
    expect(await penaltiesApi(opB.address)).toEqual([]);
    expect(await stack.db.prisma.penalty.count()).toBe(1);

    const a = await stack.client.getProver(opA.address);
    expect(BigInt(a.collateral.available)).toBe(availableBefore - PENALTY);
    expect(a.collateral.deposited).toBe(DEPOSIT.toString());
    expect((a.collateral as { slashed?: string }).slashed).toBe(PENALTY.toString());
    expect(a.penalties).toBe(1);
    const b = await stack.client.getProver(opB.address);
    expect(b.collateral.available).toBe(DEPOSIT.toString());
    expect(b.penalties).toBe(0);
    // The relay's metrics: one lapse, penalized, and the collateral it took (in gwei).
    const metrics = await eventually(async () => {
      const samples = parseProm(await stack.relay.ctx.metrics.registry.metrics());
      return sumOf(samples, "prover_boost_leases_lapsed_total", { outcome: "penalized" }) === 1
        ? samples
        : null;
    });
    expect(sumOf(metrics, "prover_boost_penalties_total", { kind: "withholding" })).toBe(1);
    expect(sumOf(metrics, "prover_boost_penalty_gwei_total", { kind: "withholding" })).toBeCloseTo(
      Number(PENALTY) / 1e9,
      15,
    );
  });

  it("refuses W1's late heartbeat and result with 409 LEASE_LOST and credits nothing", async () => {
    expect(await relayError(w1.client.heartbeat(withheld.id))).toEqual({
      status: 409,
      code: "LEASE_LOST",
    });
    expect(await relayError(w1.client.submitResult(withheld.id, proofOf(withheld)))).toEqual({
      status: 409,
      code: "LEASE_LOST",
    });
    let row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: withheld.id } });
    expect(row).toMatchObject({ operator: opB.address, workerId: w2.workerId, proof: null });
    expect(row.status).not.toBe("proven");

    // W2 proves it; W1's result is still refused and the credit stays with B.
    stopW2Heartbeat();
    await w2.client.submitResult(withheld.id, proofOf(withheld));
    expect(await relayError(w1.client.submitResult(withheld.id, proofOf(withheld)))).toEqual({
      status: 409,
      code: "LEASE_LOST",
    });
    row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: withheld.id } });
    expect(row).toMatchObject({
      status: "proven",
      operator: opB.address,
      workerId: w2.workerId,
      proof: expectedProofs(blockNumber, txs).get(withheld.id),
    });
    expect(await bullState(stack, blockNumber, withheld.type, withheld.id)).toBe("completed");
    expect((await stack.client.getProver(opA.address)).proofsDelivered).toBe(0);
  });

  it("completes the tree and pays the block; no job ever failed", async () => {
    const block = await proveUntilPaid(stack, blockNumber, [w2.client], async () => {
      // Until the block is paid (its queues are then removed) nothing may be in BullMQ's failed set.
      expect(await failedCount(stack, blockNumber)).toBe(0);
    });
    expect(block.rootProof).toBe(expectedRoot(blockNumber, txs));
    const proverPay = block.payouts.filter((p) => p.role === "prover");
    expect(proverPay.map((p) => p.recipient)).toEqual([opB.address]);
    expect(block.payouts.map((p) => p.recipient)).not.toContain(opA.address);
    const jobs = await stack.db.prisma.proofJob.findMany({ where: { blockNumber } });
    expect(jobs.every((j) => j.status === "proven" && j.operator === opB.address)).toBe(true);
    // Still exactly one penalty, on A.
    expect(await stack.db.prisma.penalty.count()).toBe(1);
    // The public tree tells the lapse apart: one lapse on the withheld node, none elsewhere; every
    // node names the operator who proved it and when.
    const tree = (await stack.client.getTree(blockNumber)).nodes;
    expect(tree.filter((n) => n.lapses > 0).map((n) => [n.id, n.lapses])).toEqual([
      [withheld.id, 1],
    ]);
    for (const n of tree) {
      expect(n.operator).toBe(opB.address);
      const row = jobs.find((j) => j.id === n.id)!;
      expect(n.provenAt).toBe(Number(row.provenAt));
    }
  });
});

describe("a job withheld twice in a won block", () => {
  const blockNumber = 2;
  let txs: `0x${string}`[];

  it("is never failed, each withholder is penalized, and the winner's honest worker proves it", async () => {
    ({ txs } = await openBlock(stack, blockNumber, { txCount: 4, winner: opA }));
    const before = BigInt((await stack.client.getProver(opA.address)).collateral.available);
    const silent1 = await signIn(stack, opA, "silent-1");
    const silent2 = await signIn(stack, opA, "silent-2");
    const honest = await signIn(stack, opA, "honest-a");

    const withheld = (await silent1.client.lease(2000))!;
    expect(withheld).not.toBeNull();
    // The honest worker drains every other ready job, so the withheld one is all that is left.
    // Meanwhile silent-1 still heartbeats (it goes silent only afterwards), so the drain is not
    // racing the lapse.
    const stopBeat = keepAlive(silent1.client, withheld.id);
    try {
      for (;;) {
        const job = await honest.client.lease(0);
        if (!job) break;
        expect(job.id).not.toBe(withheld.id);
        await honest.client.submitResult(job.id, proofOf(job));
      }
    } finally {
      stopBeat();
    }
    const second = await silent2.client.lease(15_000);
    expect(second?.id).toBe(withheld.id);
    const third = await honest.client.lease(15_000);
    expect(third?.id).toBe(withheld.id);
    const stopHonestBeat = keepAlive(honest.client, third!.id);
    expect(await bullState(stack, blockNumber, withheld.type, withheld.id)).toBe("active");
    expect(await failedCount(stack, blockNumber)).toBe(0);

    const rows = await eventually(async () => {
      const r = await stack.db.prisma.penalty.findMany({
        where: { blockNumber },
        orderBy: { createdAt: "asc" },
      });
      return r.length >= 2 ? r : null;
    });
    expect(rows.map((r) => [r.jobId, r.kind, r.workerId, r.amount.toFixed()])).toEqual([
      [withheld.id, "withholding", silent1.workerId, PENALTY.toString()],
      [withheld.id, "withholding", silent2.workerId, PENALTY.toString()],
    ]);
    expect(BigInt((await stack.client.getProver(opA.address)).collateral.available)).toBe(
      before - 2n * PENALTY,
    );

    stopHonestBeat();
    await honest.client.submitResult(third!.id, proofOf(third!));
    const block = await proveUntilPaid(stack, blockNumber, [honest.client]);
    expect(block.rootProof).toBe(expectedRoot(blockNumber, txs));
    expect(block.payouts.filter((p) => p.role === "prover").map((p) => p.recipient)).toEqual([
      opA.address,
    ]);
    // The bond came back (no deadline missed); only the two penalties were taken.
    const a = await stack.client.getProver(opA.address);
    expect(a.collateral.locked).toBe("0");
    expect(BigInt(a.collateral.available)).toBe(DEPOSIT - 3n * PENALTY);
  });
});

interface RelapseCase {
  title: string;
  blockNumber: number;
  silent: [LocalAccount, string];
  next: [LocalAccount, string];
}

describe.each<RelapseCase>([
  {
    title: "another operator's worker",
    blockNumber: 3,
    silent: [opA, "silent-3"],
    next: [opB, "honest-3"],
  },
  {
    title: "the same worker signed in again (new session, same worker id)",
    blockNumber: 4,
    silent: [opA, "restarted-4"],
    next: [opA, "restarted-4"],
  },
])("the lapse handled after the job was leased again by $title", (c) => {
  const { blockNumber } = c;
  let next: Signed;
  let withheld: LeasedJob;
  let stopBeat = () => {};

  // The lapse handler (onLeaseLapsed) takes the penalty under a row lock on the operator's
  // available balance. Holding that lock here makes the interleaving deterministic: the job is
  // back in the queue and leased again BEFORE the handler's transaction runs.
  beforeAll(async () => {
    await openBlock(stack, blockNumber, { txCount: 4 });
    const silent = await signIn(stack, c.silent[0], c.silent[1]);
    next = await signIn(stack, c.next[0], c.next[1]);
    withheld = (await silent.client.lease(2000))!;
    expect(withheld.blockNumber).toBe(blockNumber);
    await stack.db.prisma.$transaction(
      async (tx) => {
        await tx.$queryRaw`SELECT balance FROM "AccountBalance"
          WHERE account = ${accounts.available(c.silent[0].address)} FOR UPDATE`;
        const again = await proveOthersUntil(next, withheld.id);
        stopBeat = keepAlive(next.client, again.id);
        // The new lease is on record before the handler can write anything.
        await eventually(async () => {
          const row = await stack.db.prisma.proofJob.findUniqueOrThrow({
            where: { id: withheld.id },
          });
          return row.status === "leased" && row.attempts === 2;
        }, 3000);
        expect(await stack.db.prisma.penalty.count({ where: { blockNumber } })).toBe(0);
      },
      { timeout: 20_000 },
    );
  });
  afterAll(async () => {
    stopBeat();
    // Finish the block so that nothing of it is left for the next group's workers.
    await proveUntilPaid(stack, blockNumber, [next.client]).catch(() => {});
  });

  it("records the withholding once the handler gets the lock", async () => {
    const rows = await eventually(async () => {
      const r = await stack.db.prisma.penalty.findMany({ where: { blockNumber } });
      return r.length > 0 ? r : null;
    });
    expect(rows.map((r) => [r.jobId, r.operator, r.workerId, r.kind, r.amount.toFixed()])).toEqual([
      [withheld.id, c.silent[0].address, c.silent[1], "withholding", PENALTY.toString()],
    ]);
  });

  // The lapse handler resets the row only if it still refers to the lapsed lease (its leaseId),
  // not merely to the same operator and worker id: a worker that restarts (new session, same
  // worker id) may already hold the job again.
  it("still shows the job leased to its new holder", async () => {
    // Once the handler has run (its penalty row is in the same transaction as its reset).
    await eventually(async () => (await penaltiesApi(c.silent[0].address, blockNumber)).length > 0);
    const node = (await stack.client.getTree(blockNumber)).nodes.find((n) => n.id === withheld.id);
    expect(node).toMatchObject({ status: "leased", worker: c.next[1] });
    expect((await stack.client.getBlock(blockNumber)).tree.leased).toBe(1);
  });

  it("the job is still the new holder's to prove", async () => {
    expect(await bullState(stack, blockNumber, withheld.type, withheld.id)).toBe("active");
    stopBeat();
    await next.client.submitResult(withheld.id, proofOf(withheld));
    const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: withheld.id } });
    expect(row).toMatchObject({
      status: "proven",
      workerId: c.next[1],
      operator: c.next[0].address,
    });
  });
});
