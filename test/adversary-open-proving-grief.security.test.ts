// Attack: spoil an open-proving block for free. On main a fresh key with zero collateral signed
// in, leased the same job and handed back an invalid proof 20 times (the penalty was "0"). Now
// leasing in open proving needs OPEN_PROVING_MIN_COLLATERAL of free collateral and each invalid
// proof burns up to INVALID_PROOF_PENALTY_WEI of it (what there is, never below zero); invalid
// proofs still count toward the operator's bar on the job.
import { parseEnv, relayEnv } from "@prover-boost/config";
import { accounts } from "@prover-boost/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";
import { relayError, tryLease } from "./support/blocks.ts";
import {
  balance,
  expectLedgerConsistent,
  openUnclaimed,
  signIn,
  waitForStage,
} from "./support/market-flow.ts";

const MIN = 1000n;
const PENALTY = 1500n;
const BLOCK = 90;
const BAD_PROOF = `0x${"11".repeat(32)}`;
const zero = account(0xf1);
const spoiler = account(0xf2);
const repeat = account(0xf3);
const honest = account(0xf4);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    env: {
      OPEN_PROVING_MIN_COLLATERAL: MIN.toString(),
      INVALID_PROOF_PENALTY_WEI: PENALTY.toString(),
      MAX_JOB_FAILS_PER_OPERATOR: "3",
      MAX_JOB_ATTEMPTS: "20",
    },
  });
  await stack.admin.deposit(spoiler.address, 1200n);
  await stack.admin.deposit(repeat.address, 100_000n);
  await stack.admin.deposit(honest.address, MIN);
  // One tx: a single base job is ready, so every lease below is for the same job.
  await openUnclaimed(stack, BLOCK, { txCount: 1 });
  await waitForStage(stack, BLOCK, "open_proving");
});
afterAll(async () => stack?.close());

async function spoilOnce(op: typeof spoiler, workerId: string) {
  const w = await signIn(stack, op, workerId);
  const leased = await tryLease(w, 2000);
  if (!("job" in leased)) throw new Error(`expected a job, got ${JSON.stringify(leased)}`);
  const refused = await relayError(w.submitResult(leased.job.id, BAD_PROOF));
  expect(refused).toEqual({ status: 422, code: "INVALID_PROOF" });
  return leased.job.id;
}

describe("open proving is not free to grief", () => {
  it("costs collateral: none, no lease; each invalid proof burns what there is", async () => {
    const defaults = parseEnv(relayEnv, {});
    expect(defaults.OPEN_PROVING_MIN_COLLATERAL).toBeGreaterThan(0n);
    expect(defaults.INVALID_PROOF_PENALTY_WEI).toBeGreaterThan(0n);

    // A key with no collateral is offered nothing in open proving.
    const z = await signIn(stack, zero, "z0");
    expect(await tryLease(z, 500)).toEqual({ status: 204 });

    // 1200 free (>= MIN): one lease, one invalid proof takes all 1200 (less than the penalty).
    const jobId = await spoilOnce(spoiler, "s0");
    expect(await balance(stack.db.prisma, accounts.available(spoiler.address))).toBe(0n);
    const s = await signIn(stack, spoiler, "s1");
    expect(await tryLease(s, 500)).toEqual({ status: 204 });

    // A funded operator pays PENALTY per invalid proof and is barred from the job after
    // MAX_JOB_FAILS_PER_OPERATOR of them, whatever worker ids it uses.
    for (let i = 0; i < 3; i++) expect(await spoilOnce(repeat, `r${i}`)).toBe(jobId);
    expect(await balance(stack.db.prisma, accounts.available(repeat.address))).toBe(
      100_000n - 3n * PENALTY,
    );
    const r = await signIn(stack, repeat, "r3");
    expect(await tryLease(r, 500)).toEqual({ status: 204 });

    // An honest operator with the minimum still gets the job.
    const h = await signIn(stack, honest, "h0");
    const leased = await tryLease(h, 2000);
    expect(leased.status).toBe(200);

    const penalties = await stack.db.prisma.penalty.findMany({
      where: { kind: "invalid_proof" },
      orderBy: { createdAt: "asc" },
    });
    expect(penalties.map((p) => [p.operator, p.amount.toFixed()])).toEqual([
      [spoiler.address, "1200"],
      [repeat.address, PENALTY.toString()],
      [repeat.address, PENALTY.toString()],
      [repeat.address, PENALTY.toString()],
    ]);
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(1200n + 3n * PENALTY);
    await expectLedgerConsistent(stack.db.prisma);
  });
});
