// The relay's verifier hangs (a bb.js call stuck in its wasm): the result's answer is not held
// with it. Past PROOF_VERIFY_TIMEOUT_MS from the result's arrival the worker gets 503 UNAVAILABLE
// with Retry-After, the stuck thread is ended, nothing is credited or charged, and the lease is
// still the worker's, though the wait outlasted it. The relay's threads here run a verifier that
// never returns (testing/stuck-thread.mjs): the stand-in for bb.js, not for Redis or Postgres.
import { fileURLToPath } from "node:url";
import { accounts } from "@prover-boost/db";
import { type LeasedJob, RelayError } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { tryLease } from "./support/blocks.ts";
import {
  balance,
  expectLedgerConsistent,
  openUnclaimed,
  signIn,
  waitForStage,
} from "./support/market-flow.ts";

const BLOCK = 73;
const DEPOSIT = 100_000n;
const operator = account(0xa3);
const stuckThread = fileURLToPath(
  new URL("../packages/proofs/src/testing/stuck-thread.mjs", import.meta.url),
);

describe("a verifier that gives no verdict", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      env: {
        PROOF_SYSTEM: "honk",
        // Longer than the lease: while the relay waits for a verdict, the worker (which leaves the
        // lease to its result) sends no heartbeat, and the lease would run out under it.
        PROOF_VERIFY_TIMEOUT_MS: "5000",
        LEASE_MS: "2000",
        INVALID_PROOF_PENALTY_WEI: "1000",
      },
      proofThreadFile: stuckThread,
    });
    await stack.admin.deposit(operator.address, DEPOSIT);
    await openUnclaimed(stack, BLOCK, { txCount: 1 });
    await waitForStage(stack, BLOCK, "open_proving");
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("answers 503 with Retry-After past the deadline, again and again; nothing credited or charged; the lease stays", async () => {
    const w = await signIn(stack, operator, "w0");
    const job = await eventually(async () => {
      const r = await tryLease(w, 1000);
      return r.status === 200 && "job" in r ? (r.job as LeasedJob) : null;
    }, 30_000);
    expect(job.proofSystem).toBe("honk");
    // Twice: the thread stuck on the first was ended, and its replacement gets stuck too.
    for (let i = 0; i < 2; i++) {
      const err = await w.submitResult(job.id, "0x00").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RelayError);
      expect(err).toMatchObject({ status: 503, code: "UNAVAILABLE" });
      expect((err as RelayError).retryAfterMs).toBeGreaterThan(0);
      expect((err as RelayError).message).toMatch(
        /the honk verifier is unavailable \((no verdict within 5000 ms of the result's arrival|the honk verifier gave no answer within 5000 ms on its thread)/,
      );
    }
    // Still the worker's lease, nothing recorded against the job or the operator.
    expect(await w.heartbeat(job.id)).toMatchObject({ leaseExpiresAt: expect.any(Number) });
    const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(row.status).not.toBe("proven");
    expect(row.proof).toBeNull();
    expect(await stack.db.prisma.penalty.count()).toBe(0);
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(0n);
    expect(await balance(stack.db.prisma, accounts.available(operator.address))).toBe(DEPOSIT);
    await expectLedgerConsistent(stack.db.prisma);
  });
});
