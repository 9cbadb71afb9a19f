// Retries are bounded across worker ids, on real Redis and Postgres, through the HTTP API. Worker
// ids are free, so one operator key signing in under new ids must not get a failing job back
// again and again, and invalid proofs count like any other failed attempt: one key cannot spoil
// the same job twenty times in a row. Bars on the operator (MAX_JOB_FAILS_PER_OPERATOR) hold for
// all its worker ids; every job has MAX_JOB_ATTEMPTS failed attempts across everyone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";
import { openBlock, relayError, signIn, tryLease } from "./support/blocks.ts";

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
