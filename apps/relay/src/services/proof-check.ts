// The relay's verifiers, one per proof system, built on first use and closed with the relay.
// Real proofs (honk) are verified in a pool of worker threads, so a relay busy verifying still
// answers bids and leases on time; the simulated system's check is one keccak256 and runs in
// place (a thread hop would cost more than the check).
import type { JobType } from "@prover-boost/core";
import {
  createProofPool,
  createProofSystem,
  isProofSystemName,
  type NodeProof,
  type ProofNode,
  type ProofSystem,
  type ProofSystemName,
  ProofSystemUnavailable,
} from "@prover-boost/proofs";
import type { Hex } from "viem";

export class ProofVerifiers {
  private readonly systems = new Map<ProofSystemName, ProofSystem>();

  constructor(
    private readonly opts: { verifyThreads: number; verifyTimeoutMs?: number; threadFile?: string },
  ) {}

  /** The verifier of a block's proof system (its auction's; absent in old job data: sim). */
  of(name: string | undefined): ProofSystem {
    const n: ProofSystemName = name === undefined ? "sim" : checkedName(name);
    let s = this.systems.get(n);
    if (!s) {
      s =
        n === "sim"
          ? createProofSystem("sim")
          : createProofPool(n, {
              maxThreads: this.opts.verifyThreads,
              ...(this.opts.verifyTimeoutMs !== undefined
                ? { verifyTimeoutMs: this.opts.verifyTimeoutMs }
                : {}),
              ...(this.opts.threadFile !== undefined ? { threadFile: this.opts.threadFile } : {}),
            });
      this.systems.set(n, s);
    }
    return s;
  }

  async close(): Promise<void> {
    const all = [...this.systems.values()];
    this.systems.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}

function checkedName(name: string): ProofSystemName {
  if (!isProofSystemName(name)) throw new Error(`unknown proof system ${JSON.stringify(name)}`);
  return name;
}

/** The node a job proves, from its data: a base job's transaction hash is its one input. */
export function proofNodeOf(
  job: { type: JobType; blockNumber: number; level: number; index: number; inputs: readonly Hex[] },
  childOutputs: readonly Hex[],
): ProofNode {
  return {
    type: job.type,
    blockNumber: job.blockNumber,
    level: job.level,
    index: job.index,
    ...(job.type === "base" && job.inputs[0] !== undefined ? { txHash: job.inputs[0] } : {}),
    childOutputs,
  };
}

export type { NodeProof, ProofNode };
export { ProofSystemUnavailable };
