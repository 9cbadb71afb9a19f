// The proof-system backend: a job no longer wanted (its lease lost, the worker stopping) ends the
// pool thread proving it, so the next job is not queued behind a proof no one will hand in. The
// pool's threads here run a stand-in prover that never finishes a node of index 13.
import { createProofPool } from "@prover-boost/proofs";
import type { LeasedJob } from "@prover-boost/sdk";
import { describe, expect, it } from "vitest";
import { JobAbort } from "../errors.ts";
import { systemBackend } from "./system.ts";

const threadFile = new URL(
  "../../../../packages/proofs/src/testing/stuck-thread.mjs",
  import.meta.url,
).href;

const job = (index: number): LeasedJob => ({
  id: `5:1:${index}`,
  type: "merge",
  blockNumber: 5,
  level: 1,
  index,
  inputs: [],
  proofSystem: "sim",
  children: [],
  leaseExpiresAt: Date.now() + 60_000,
});

describe("systemBackend on a pool", () => {
  it("ends the thread of an aborted job with the abort's reason, and proves the next job", async () => {
    const backend = systemBackend(createProofPool("sim", { maxThreads: 1, threadFile }));
    try {
      const lost = new AbortController();
      const stuck = backend.prove(job(13), lost.signal);
      setTimeout(() => lost.abort(new JobAbort("lease_lost", "the lease was lost")), 200);
      await expect(stuck).rejects.toBeInstanceOf(JobAbort);
      // One thread, and it was spinning: the next job is proved on its replacement.
      expect(await backend.prove(job(0), new AbortController().signal)).toEqual({
        proof: "0x01",
        publicInputs: [],
      });
    } finally {
      await backend.close?.();
    }
  });
});
