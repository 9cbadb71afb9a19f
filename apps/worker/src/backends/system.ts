// Backends over a proof system of packages/proofs: `honk` proves real UltraHonk proofs on a pool
// of worker threads (so the worker's event loop keeps heartbeating while a proof is made), and
// `sim` can be run the same way. The node proved is the leased job: its type and position, a base
// job's transaction hash, and its children's accepted outputs as the lease carries them.
import {
  createProofPool,
  type ProofNode,
  type ProofSystem,
  type ProofSystemName,
} from "@prover-boost/proofs";
import type { LeasedJob } from "@prover-boost/sdk";
import { BackendError } from "../errors.ts";
import { abortReason } from "../timing.ts";
import type { BackendProof, ProofBackend } from "../types.ts";

/** The node a leased job proves. */
export function proofNodeOfJob(job: LeasedJob): ProofNode {
  return {
    type: job.type,
    blockNumber: job.blockNumber,
    level: job.level,
    index: job.index,
    ...(job.type === "base" && job.inputs[0] !== undefined ? { txHash: job.inputs[0] } : {}),
    childOutputs: job.children.map((c) => c.output),
  };
}

export interface SystemBackendOptions {
  /** Proving threads; default: the machine's parallelism minus one. */
  threads?: number;
}

/**
 * Proves with `system` (a pool's, usually). A job of another proof system than the backend's is
 * handed back as retryable, so another worker proves it (the relay stops offering it to this
 * worker after MAX_RETRYABLE_FAILS_PER_WORKER hand-backs); a non-retryable fail would fail the
 * job for everyone.
 */
export function systemBackend(system: ProofSystem): ProofBackend {
  return {
    name: system.name,
    async prove(job: LeasedJob, signal: AbortSignal): Promise<BackendProof> {
      if (signal.aborted) throw abortReason(signal);
      if (job.proofSystem !== system.name) {
        throw new BackendError(
          `the ${system.name} backend cannot prove a ${job.proofSystem} block's job`,
        );
      }
      // An abort (the lease lost, the worker stopping) ends a pool's thread proving it.
      try {
        const { proof, publicInputs } = await system.prove(proofNodeOfJob(job), { signal });
        return { proof, publicInputs };
      } catch (err) {
        if (signal.aborted) throw abortReason(signal);
        throw err;
      }
    },
    close: () => system.close(),
  };
}

/** A backend proving with `name` on a pool of worker threads. */
export function poolBackend(name: ProofSystemName, opts: SystemBackendOptions = {}): ProofBackend {
  return systemBackend(createProofPool(name, { maxThreads: opts.threads }));
}
