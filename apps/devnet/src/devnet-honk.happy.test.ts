// The devnet with real proofs: every block's proof system is honk, so the simulated operators'
// workers prove each node with UltraHonk on a proving thread and the relay verifies each proof on
// its own threads before credit; the blocks are paid as with the simulation.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { FIELD_MODULUS } from "@prover-boost/proofs";
import { afterAll, expect, it } from "vitest";
import { runDevnet } from "./devnet.ts";

const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("proves and pays two blocks with real UltraHonk proofs", async () => {
  dir = await mkdtemp(path.join(tmpdir(), "pb-devnet-honk-"));
  const report = await runDevnet({
    blocks: 2,
    txs: 3,
    operators: 1,
    workers: 2,
    seed: "devnet-honk-test",
    port: 0,
    blockTimeMs: 700,
    biddingMs: 1500,
    deadlineMs: 600_000,
    simDurationsMs: {},
    proofs: "honk",
    proveThreads: 1,
    env: { REDIS_URL: redisUrl, LOG_LEVEL: "silent", DATA_DIR: dir },
  });
  expect(report.proofSystem).toBe("honk");
  expect(report.blocks.map((b) => b.stage)).toEqual(["paid", "paid"]);
  for (const b of report.blocks) {
    // 3 transactions: 3 base jobs, a merge and the block root.
    expect(b.jobs).toBe(5);
    // A honk block's root "proof" on the block view is the root's public output: a field.
    expect(b.rootProof).toMatch(/^0x[0-9a-f]{64}$/);
    expect(BigInt(b.rootProof!)).toBeLessThan(FIELD_MODULUS);
    expect(b.payouts.reduce((s, p) => s + BigInt(p.amount), 0n)).toBe(BigInt(b.blockReward));
  }
  expect(report.blocks[0]!.rootProof).not.toBe(report.blocks[1]!.rootProof);
}, 600_000);
