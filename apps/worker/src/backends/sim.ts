// The simulated proof backend. A SIMULATION, not a prover: it waits a configured time per job
// type (a timer; it burns no CPU) and returns the relay's deterministic sim proof for the job.
import { type JobType, simProof } from "@prover-boost/core";
import type { LeasedJob } from "@prover-boost/sdk";
import type { Hex } from "viem";
import { BackendError } from "../errors.ts";
import { sleep } from "../timing.ts";
import type { ProofBackend } from "../types.ts";

/** Default simulated proving time per job type, ms. */
export const defaultSimDurationsMs: Readonly<Record<JobType, number>> = {
  base: 200,
  merge: 100,
  block_root: 300,
  single_tx_block_root: 300,
  empty_block_root: 100,
};

export interface SimBackendOptions {
  /** Simulated proving time per job type, ms; missing types use defaultSimDurationsMs. */
  durationsMs?: Partial<Record<JobType, number>>;
}

/** The proof the relay expects for a leased job under the sim scheme. */
export function simProofOf(job: LeasedJob): Hex {
  return simProof({
    type: job.type,
    blockNumber: job.blockNumber,
    level: job.level,
    index: job.index,
    inputs: job.inputs,
    children: job.children.map((c) => c.output),
  });
}

/**
 * A SIMULATED backend: sleeps `durationsMs[job.type]` (abortable through the signal) and returns
 * `simProof` of the job. No zero-knowledge proof is produced; only a sim relay accepts it.
 */
export function simBackend(options: SimBackendOptions = {}): ProofBackend {
  const durations = { ...defaultSimDurationsMs, ...options.durationsMs };
  return {
    name: "sim",
    async prove(job: LeasedJob, signal: AbortSignal): Promise<Hex> {
      // A real proof system's block: a simulated proof would only be refused (and penalized).
      if (job.proofSystem !== undefined && job.proofSystem !== "sim") {
        throw new BackendError(`the sim backend cannot prove a ${job.proofSystem} block's job`);
      }
      await sleep(durations[job.type] ?? 0, signal);
      return simProofOf(job);
    },
  };
}
