import { simProof } from "@prover-boost/core";
import type { LeasedJob } from "@prover-boost/sdk";
import { describe, expect, it } from "vitest";
import { syntheticJob } from "../calibrate.ts";
import { defaultSimDurationsMs, simBackend } from "./sim.ts";

const job: LeasedJob = {
  id: "7:1:0",
  type: "merge",
  blockNumber: 7,
  level: 1,
  index: 0,
  inputs: [],
  proofSystem: "sim",
  children: [
    { id: "7:2:0", output: `0x${"11".repeat(32)}`, proof: `0x${"11".repeat(32)}` },
    { id: "7:2:1", output: `0x${"22".repeat(32)}`, proof: `0x${"22".repeat(32)}` },
  ],
  leaseExpiresAt: Date.now() + 60_000,
};

describe("simBackend", () => {
  it("returns simProof of the job", async () => {
    const proof = await simBackend({ durationsMs: { merge: 1 } }).prove(
      job,
      new AbortController().signal,
    );
    expect(proof).toBe(
      simProof({
        type: "merge",
        blockNumber: 7,
        level: 1,
        index: 0,
        inputs: [],
        children: job.children.map((c) => c.proof),
      }),
    );
  });

  it("proves every job type, with the configured durations", async () => {
    const backend = simBackend({ durationsMs: { base: 0, merge: 0, block_root: 0 } });
    for (const type of ["base", "merge", "block_root"] as const) {
      const j = syntheticJob(type, 0);
      const proof = await backend.prove(j, new AbortController().signal);
      expect(proof).toMatch(/^0x[0-9a-f]{64}$/);
    }
    expect(defaultSimDurationsMs).toEqual({
      base: 200,
      merge: 100,
      block_root: 300,
      single_tx_block_root: 300,
      empty_block_root: 100,
    });
  });

  it("rejects promptly when aborted", async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = simBackend({ durationsMs: { merge: 60_000 } }).prove(job, ac.signal);
    setTimeout(() => ac.abort(new Error("lease lost")), 20);
    await expect(p).rejects.toThrow("lease lost");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("rejects at once when the signal is already aborted", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(simBackend().prove(job, ac.signal)).rejects.toThrow();
  });
});
