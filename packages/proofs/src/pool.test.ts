import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Hex } from "viem";
import { afterAll, describe, expect, it } from "vitest";
import { ProofSystemUnavailable } from "./honk.ts";
import { createProofPool } from "./pool.ts";
import { poolTaskRunner } from "./pool-task.ts";
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

describe("a proof pool's verification deadline, and a proof's abort", () => {
  const threadFile = new URL("./testing/stuck-thread.mjs", import.meta.url).href;
  const node: ProofNode = { type: "merge", blockNumber: 1, level: 1, index: 0, childOutputs: [] };
  const hung: NodeProof = { proof: "0x00", publicInputs: [] };
  const fine: NodeProof = { proof: "0x01", publicInputs: [] };

  it("gives up a verifier that hangs (not a verdict), ends its thread and goes on", async () => {
    const pool = createProofPool("sim", { maxThreads: 1, threadFile, verifyTimeoutMs: 2000 });
    try {
      const err = await pool.verify(node, hung).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProofSystemUnavailable);
      expect((err as Error).message).toMatch(/no answer within 2000 ms on its thread/);
      // The one thread was spinning: only a new one can answer this.
      expect(await pool.verify(node, fine)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it("runs a verification queued behind a hung one once its thread is ended, its wait not counted", async () => {
    const pool = createProofPool("sim", { maxThreads: 1, threadFile, verifyTimeoutMs: 2000 });
    try {
      const first = pool.verify(node, hung).catch((e: unknown) => e);
      // It waits ~2 s for the one thread, as long as the run limit: its own run starts then, on a
      // new thread, and is not cut short by the time it waited.
      const queued = pool.verify(node, fine, { signal: AbortSignal.timeout(20_000) });
      expect(await first).toBeInstanceOf(ProofSystemUnavailable);
      expect(await queued).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it("lets a caller stop waiting for a thread, touching none", async () => {
    const pool = createProofPool("sim", { maxThreads: 1, threadFile, verifyTimeoutMs: 2000 });
    try {
      const first = pool.verify(node, hung).catch((e: unknown) => e);
      const waited = await pool
        .verify(node, fine, { signal: AbortSignal.timeout(100) })
        .catch((e: unknown) => e);
      expect(waited).toMatchObject({ name: "TimeoutError" });
      expect(await first).toBeInstanceOf(ProofSystemUnavailable);
      expect(await pool.verify(node, fine)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it("tells a proof system that could not run on its thread from a verdict", async () => {
    const pool = createProofPool("sim", { maxThreads: 1, threadFile });
    try {
      const err = await pool
        .verify(node, { proof: "0x02", publicInputs: [] })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProofSystemUnavailable);
      expect((err as Error).message).toBe("bb.js did not start");
    } finally {
      await pool.close();
    }
  });

  it("ends the thread of a proof no longer wanted, and proves on with a new one", async () => {
    const pool = createProofPool("sim", { maxThreads: 1, threadFile });
    try {
      const wanted = new AbortController();
      const stuck = pool.prove({ ...node, index: 13 }, { signal: wanted.signal });
      setTimeout(() => wanted.abort(new Error("the lease was lost")), 200);
      await expect(stuck).rejects.toThrow("the lease was lost");
      // The one thread was spinning on the abandoned proof: only a new one can answer this.
      expect(await pool.prove(node)).toEqual({ proof: "0x01", publicInputs: [] });
      // One already aborted is not started.
      await expect(pool.prove(node, { signal: AbortSignal.abort() })).rejects.toMatchObject({
        name: "AbortError",
      });
    } finally {
      await pool.close();
    }
  });

  it("answers a proof system that cannot run as a marker a thread can send back", async () => {
    const down = createProofSystem("sim");
    const run = poolTaskRunner(() => ({
      ...down,
      verify: () => Promise.reject(new ProofSystemUnavailable("bb.js did not start")),
      prove: () => Promise.reject(new Error("out of memory")),
    }));
    expect(await run({ op: "verify", system: "sim", node, proof: fine })).toEqual({
      proofSystemUnavailable: "bb.js did not start",
    });
    // Any other failure is the proof system's own: thrown as it is.
    await expect(run({ op: "prove", system: "sim", node })).rejects.toThrow("out of memory");
  });

  it("refuses a deadline Node's timers cannot hold", () => {
    for (const verifyTimeoutMs of [0, 1.5, 3e9, Number.NaN]) {
      expect(() => createProofPool("sim", { verifyTimeoutMs })).toThrow(RangeError);
    }
  });
});
