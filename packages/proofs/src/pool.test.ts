import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Hex } from "viem";
import { afterAll, describe, expect, it } from "vitest";
import { createProofPool } from "./pool.ts";
import { createProofSystem } from "./system.ts";
import type { NodeProof, ProofNode } from "./types.ts";

const run = promisify(execFile);
const tx = `0x${"5a".repeat(32)}` as Hex;

describe("honk proof pool", () => {
  const pool = createProofPool("honk", { maxThreads: 2 });
  const local = createProofSystem("honk");
  afterAll(async () => {
    await pool.close();
    await local.close();
  });

  it("proves on worker threads; the proof verifies in the pool and in-thread alike", async () => {
    const base: ProofNode = {
      type: "base",
      blockNumber: 3,
      level: 1,
      index: 1,
      txHash: tx,
      childOutputs: [],
    };
    const proof = await pool.prove(base);
    expect(await pool.verify(base, proof)).toBe(true);
    expect(await local.verify(base, proof)).toBe(true);
    expect(await pool.verify({ ...base, index: 0 }, proof)).toBe(false);
    expect(pool.outputOf(base, proof)).toBe(local.outputOf(base, proof));
    expect(pool.circuitOf("base")).toBe("prover_boost_base");
    expect(await pool.verificationKey("base")).toBe(await local.verificationKey("base"));
  });

  it("keeps the calling event loop free while 20 verifications run", async () => {
    const nodes: ProofNode[] = Array.from({ length: 4 }, (_, i) => ({
      type: "base",
      blockNumber: 9,
      level: 2,
      index: i,
      txHash: tx,
      childOutputs: [],
    }));
    const proofs: NodeProof[] = [];
    for (const node of nodes) proofs.push(await pool.prove(node));

    // A timer that ticks on the calling thread and records how many verifications had finished
    // at each tick. Were verification run on this thread, no tick could fall between two of them.
    let finished = 0;
    const seen = new Set<number>();
    let ticks = 0;
    const timer = setInterval(() => {
      ticks++;
      seen.add(finished);
    }, 1);
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const ok = await pool.verify(nodes[i % 4]!, proofs[i % 4]!);
        finished++;
        // Let the timer run between completions as it would on a busy relay.
        await new Promise((resolve) => setImmediate(resolve));
        return ok;
      }),
    );
    clearInterval(timer);
    expect(results).toEqual(Array(20).fill(true));
    expect(ticks).toBeGreaterThanOrEqual(5);
    // Ticks fell while verifications were still outstanding, at several different points.
    const during = [...seen].filter((n) => n < 20);
    expect(during.length).toBeGreaterThanOrEqual(3);
  });

  it("passes a refusal from a thread back to the caller", async () => {
    await expect(
      pool.prove({ type: "merge", blockNumber: 1, level: 1, index: 0, childOutputs: [] }),
    ).rejects.toThrow(/2 child outputs/);
    expect(
      await pool.verify(
        { type: "merge", blockNumber: 1, level: 1, index: 0, childOutputs: [] },
        { proof: "0x", publicInputs: [] },
      ),
    ).toBe(false);
  });

  it("refuses work once closed", async () => {
    const p = createProofPool("sim", { maxThreads: 1 });
    await p.close();
    await expect(
      p.prove({ type: "empty_block_root", blockNumber: 1, level: 0, index: 0, childOutputs: [] }),
    ).rejects.toThrow(/closed/);
  });

  it("lets the process exit by itself once closed", async () => {
    const script = fileURLToPath(new URL("./testing/pool-exit.ts", import.meta.url));
    const tsx = fileURLToPath(new URL("../../../node_modules/.bin/tsx", import.meta.url));
    // A process that does not exit on its own is killed at the timeout and fails the test.
    const { stdout } = await run(tsx, [script], { timeout: 120_000, killSignal: "SIGKILL" });
    expect(JSON.parse(stdout.trim().split("\n").at(-1)!)).toEqual({ verified: true });
  });
});
