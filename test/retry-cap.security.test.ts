// Retries are bounded across worker ids, on real Redis and Postgres, through the HTTP API. Worker
// ids are free, so one operator key signing in under new ids must not get a failing job back
// again and again, and invalid proofs count like any other failed attempt: one key cannot spoil
// the same job twenty times in a row. Bars on the operator (MAX_JOB_FAILS_PER_OPERATOR) hold for
// all its worker ids; every job has MAX_JOB_ATTEMPTS failed attempts across everyone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import {
  bullState,
  openBlock,
  proofOf,
  proveUntilPaid,
  relayError,
  signIn,
  tryLease,
} from "./support/blocks.ts";

const BAD_PROOF = `0x${"cd".repeat(32)}`;
let stack: Stack;
const op = account(0xca1);

beforeAll(async () => {
  stack = await startStack({
    env: {
      LEASE_MS: "30000",
      RATE_LIMIT_PER_IP: "0",
      MAX_JOB_FAILS_PER_OPERATOR: "4",
      MAX_JOB_ATTEMPTS: "5",
    },
  });
  await stack.admin.deposit(op.address, 10n ** 18n);
});
afterAll(async () => stack?.close());

describe("one operator key with many worker ids", () => {
  it("cannot re-cycle a failing job once per new worker id", async () => {
    const blockNumber = 1;
    await openBlock(stack, blockNumber, { txCount: 1, winner: op });
    let cycles = 0;
    for (let i = 0; i < 12; i++) {
      const w = await signIn(stack, op, `cycler-${i}`);
      const r = await tryLease(w.client, 300);
      if (!("job" in r)) continue;
      const answer = await w.client.failJob(r.job.id, "flaky", true);
      expect(answer.status).toBe("requeued");
      cycles++;
    }
    // The operator's workers together fail it MAX_JOB_FAILS_PER_OPERATOR times; then none of
    // its worker ids, old or new, is offered it (the block is left to its proof deadline).
    expect(cycles).toBe(4);
  });

  it("cannot spoil the same job twenty times with invalid proofs", async () => {
    const blockNumber = 2;
    await openBlock(stack, blockNumber, { txCount: 1, winner: op });
    let spoiled = 0;
    let cooled = false;
    for (let i = 0; i < 20; i++) {
      const w = await signIn(stack, op, `spoiler-${i}`);
      const r = await tryLease(w.client, 300);
      if (!("job" in r)) continue;
      expect(await relayError(w.client.submitResult(r.job.id, BAD_PROOF))).toEqual({
        status: 422,
        code: "INVALID_PROOF",
      });
      spoiled++;
      // The worker that sent it is cooled down on the job: not offered it again at once.
      if (!cooled) {
        expect(await tryLease(w.client, 0)).toEqual({ status: 204 });
        cooled = true;
      }
    }
    expect(spoiled).toBe(4);
    const penalties = await stack.db.prisma.penalty.count({
      where: { blockNumber, kind: "invalid_proof" },
    });
    expect(penalties).toBe(4);
  });
});

describe("the job attempt cap (MAX_JOB_ATTEMPTS)", () => {
  const winner = account(0xca2);
  const others = [account(0xca3), account(0xca4), account(0xca5)];
  let s: Stack;

  beforeAll(async () => {
    s = await startStack({
      env: {
        LEASE_MS: "30000",
        RATE_LIMIT_PER_IP: "0",
        MAX_JOB_ATTEMPTS: "2",
        MAX_JOB_FAILS_PER_OPERATOR: "10",
        MAX_JOB_REISSUES: "1",
        REISSUE_BACKOFF_MS: "600000",
      },
    });
    for (const a of [winner, ...others]) await s.admin.deposit(a.address, 10n ** 18n);
  });
  afterAll(async () => s?.close());

  it("fails the job at the cap; the block takes the deadline path and another operator proves it", async () => {
    const blockNumber = 1;
    await openBlock(s, blockNumber, { txCount: 1, winner, proofDeadlineInMs: 8000 });
    for (const id of ["w1", "w2"]) {
      const w = await signIn(s, winner, id);
      const job = (await w.client.lease(2000))!;
      await w.client.failJob(job.id, "flaky", true);
    }
    const baseId = `${blockNumber}-1-0`;
    expect(await bullState(s, blockNumber, "base", baseId)).toBe("failed");
    const row = await s.db.prisma.proofJob.findUniqueOrThrow({ where: { id: baseId } });
    expect(row.status).toBe("failed");
    // The deadline path: slashed, open proving, the job re-issued with a fresh count.
    await eventually(async () => (await s.client.getBlock(blockNumber)).stage === "open_proving");
    const slashes = await s.db.prisma.penalty.count({ where: { blockNumber, kind: "slash" } });
    expect(slashes).toBe(1);
    const other = await signIn(s, others[0]!, "prover");
    const job = await eventually(() => other.client.lease(500));
    expect(job.id).toBe(baseId);
    await other.client.submitResult(job.id, proofOf(job));
    await proveUntilPaid(s, blockNumber, [other.client]);
  });

  it("re-issues a failing job in open proving only MAX_JOB_REISSUES times at once", async () => {
    const blockNumber = 2;
    // No bid: the block goes straight to open proving.
    await openBlock(s, blockNumber, { txCount: 1 });
    const baseId = `${blockNumber}-1-0`;
    // Each round: two failed attempts (the cap) by different operators fail the job.
    const round = async (ops: typeof others, tag: string) => {
      for (const [i, a] of ops.entries()) {
        const w = await signIn(s, a, `${tag}-${i}`);
        const job = await eventually(() => w.client.lease(500));
        expect(job.id).toBe(baseId);
        await w.client.failJob(job.id, "flaky", true);
      }
    };
    await round([others[0]!, others[1]!], "r1");
    // Re-issued once (the bound), then failed again: it stays failed until the backoff.
    await eventually(
      async () => (await bullState(s, blockNumber, "base", baseId)) !== "failed" || null,
    );
    await round([others[2]!, winner], "r2");
    expect(await bullState(s, blockNumber, "base", baseId)).toBe("failed");
    await new Promise((r) => setTimeout(r, 1500));
    expect(await bullState(s, blockNumber, "base", baseId)).toBe("failed");
    const row = await s.db.prisma.proofJob.findUniqueOrThrow({ where: { id: baseId } });
    expect(row.status).toBe("failed");
  });
});
