// The relay's verifiers, one per proof system, built on first use and closed with the relay.
// Real proofs (honk) are verified in a pool of worker threads, so a relay busy verifying still
// answers bids and leases on time; the simulated system's check is one keccak256 and runs in
// place (a thread hop would cost more than the check).
import { createHash } from "node:crypto";
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
  /**
   * Real proofs' verifications under way or just ended, by what they verify (the system, the
   * node and the proof with its public inputs). A result the relay answered 503 for want of a
   * verdict is sent again: the resend joins the verification still queued or running, or takes
   * the verdict it reached, rather than queueing the same work a second time (under a burst,
   * verifications nobody waited for would otherwise crowd out the ones still awaited). A
   * verifier failure is not kept: the next try verifies afresh.
   */
  private readonly verdicts = new Map<string, { verdict: Promise<boolean>; at: number }>();

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

  /**
   * The verdict on `proof` of `node` by `system`: for a real proof system, shared with a
   * verification of the same under way or ended within VERDICT_KEEP_MS (at most VERDICTS_KEPT
   * kept). The simulated check runs in place each time (one keccak256, cheaper than the key).
   */
  verdict(system: ProofSystem, node: ProofNode, proof: NodeProof): Promise<boolean> {
    if (system.name === "sim") return system.verify(node, proof);
    const now = Date.now();
    for (const [k, v] of this.verdicts) {
      if (now - v.at <= VERDICT_KEEP_MS && this.verdicts.size <= VERDICTS_KEPT) break;
      this.verdicts.delete(k);
    }
    const key = createHash("sha256")
      .update(JSON.stringify([system.name, node, proof.proof.toLowerCase(), proof.publicInputs]))
      .digest("hex");
    const kept = this.verdicts.get(key);
    if (kept) return kept.verdict;
    const verdict = system.verify(node, proof);
    this.verdicts.set(key, { verdict, at: now });
    verdict.then(
      () => {
        const entry = this.verdicts.get(key);
        if (entry?.verdict === verdict) entry.at = Date.now();
      },
      () => {
        if (this.verdicts.get(key)?.verdict === verdict) this.verdicts.delete(key);
      },
    );
    return verdict;
  }

  async close(): Promise<void> {
    const all = [...this.systems.values()];
    this.systems.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}

/** The most verifications kept for resends (the oldest go first). */
export const VERDICTS_KEPT = 10_000;
/** How long a verdict is kept for a resend (one comes after a 503's Retry-After, seconds). */
export const VERDICT_KEEP_MS = 60_000;

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
