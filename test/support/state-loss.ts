// Shared by the state-loss tests: a winner's workers proving part of a block, what was proven
// before a loss, and what must hold after it (paid once, nobody penalized, proofs kept); and a
// private redis-server to kill and start again empty.
import { type ChildProcess, spawn } from "node:child_process";
import { killWithThisProcess } from "@prover-boost/escrow";
import type { LeasedJob, RelayClient } from "@prover-boost/sdk";
import { expect } from "vitest";
import { answersPing } from "../../apps/devnet/src/redis-server.ts";
import { account } from "../fixtures.ts";
import { eventually, type Stack } from "../harness.ts";
import { expectedProofs, proofOf } from "./blocks.ts";
import { expectLedgerConsistent, movements } from "./market-flow.ts";

export const DEPOSIT = 1_000_000n;
export const TXS = 8;
/** Long enough for the bid to land in time on a busy machine. */
export const BIDDING_MS = 4000;
export const opA = account(0x5a1);

/** Leases and proves jobs until `count` proofs were accepted. */
export async function proveSome(workers: RelayClient[], count: number): Promise<void> {
  let proven = 0;
  await eventually(async () => {
    for (const w of workers) {
      if (proven >= count) break;
      const job = await w.lease(300);
      if (!job) continue;
      await w.submitResult(job.id, proofOf(job));
      proven++;
    }
    return proven >= count;
  }, 30_000);
}

export async function provenRows(stack: Stack, blockNumber: number) {
  return stack.db.prisma.proofJob.findMany({
    where: { blockNumber, status: "proven" },
    select: { id: true, proof: true, operator: true, workerId: true, provenAt: true },
    orderBy: { id: "asc" },
  });
}

/** The block was paid once, in full, with nobody penalized, and every accepted proof kept. */
export async function expectPaidOnceNoPenalty(
  stack: Stack,
  blockNumber: number,
  keptBefore: Awaited<ReturnType<typeof provenRows>>,
) {
  const prisma = stack.db.prisma;
  const block = await prisma.block.findUniqueOrThrow({ where: { number: blockNumber } });
  expect(block.stage).toBe("paid");
  expect(block.jobsProven).toBe(block.jobsTotal);
  expect(await prisma.proofJob.count({ where: { blockNumber } })).toBe(block.jobsTotal);
  expect(await prisma.penalty.findMany({ where: { blockNumber } })).toEqual([]);
  expect(await movements(prisma, { kind: "slash", blockNumber })).toEqual([]);
  expect(await movements(prisma, { kind: "payout", blockNumber })).toHaveLength(1);
  expect(await movements(prisma, { kind: "unlock", blockNumber })).toHaveLength(1);
  const payouts = await prisma.payout.findMany({ where: { blockNumber } });
  const total = payouts.reduce((s, p) => s + BigInt(p.amount.toFixed()), 0n);
  expect(total).toBe(1_000_000_000_000_000_000n);
  // Proofs accepted before the loss are still there, credited to whoever made them.
  const after = new Map((await provenRows(stack, blockNumber)).map((r) => [r.id, r]));
  for (const row of keptBefore) expect(after.get(row.id)).toEqual(row);
  const a = await stack.client.getProver(opA.address);
  expect(a.collateral.slashed).toBe("0");
  expect(a.collateral.locked).toBe("0");
  await expectLedgerConsistent(prisma);
}

/** Every leased job carries its children's proofs, those proven before a rebuild included. */
export function checkChildren(blockNumber: number, txs: readonly `0x${string}`[]) {
  const expected = expectedProofs(blockNumber, txs);
  return (job: LeasedJob) => {
    for (const c of job.children) expect(c.proof).toBe(expected.get(c.id));
  };
}

/** A private redis-server without persistence on `port`, answering before this returns. */
export async function startRedisServer(port: number): Promise<ChildProcess> {
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  // Gone with this process even if it is killed with SIGKILL (a test worker given up on).
  killWithThisProcess(child);
  await eventually(() => answersPing(`redis://127.0.0.1:${port}`));
  return child;
}

export { freePort } from "./ports.ts";
