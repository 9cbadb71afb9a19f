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
   * Real proofs' verifications waiting, running or just ended, by what they verify (the system,
   * the node, the proof with its public inputs). A result the relay answered 503 for want of a
   * verdict is sent again: the resend joins the verification still running, or takes the verdict
   * it reached, rather than queueing the same work again. One still waiting for a thread when
   * every request awaiting it has given up is dropped, so the queue holds only awaited work. A
   * verifier failure is not kept. Ended ones sit in the order they ended, after the rest.
   */
  private readonly verdicts = new Map<string, Verdict>();
  /** How many of `verdicts` have ended. */
  private ended = 0;
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
   * The verdict on `proof` of `node` by `system`, for a caller that gives up at `signal`: for a
   * real proof system, shared with a verification of the same waiting, running or ended within
   * VERDICT_KEEP_MS (at most VERDICTS_KEPT ended ones kept). The simulated check runs in place
   * each time (one keccak256, cheaper than the key).
   */
  verdict(
    system: ProofSystem,
    node: ProofNode,
    proof: NodeProof,
    signal?: AbortSignal,
  ): Promise<boolean> {
    if (system.name === "sim") return system.verify(node, proof);
    const now = Date.now();
    this.forgetEnded(now);
    const key = createHash("sha256")
      .update(JSON.stringify([system.name, node, proof.proof.toLowerCase(), proof.publicInputs]))
      .digest("hex");
    let entry = this.verdicts.get(key);
    if (!entry) {
      const drop = new AbortController();
      const verdict = system.verify(node, proof, { signal: drop.signal });
      const made: Verdict = { verdict, drop, waiting: 0, endedAt: undefined };
      entry = made;
      this.verdicts.set(key, made);
      verdict.then(
        () => {
          // Moved to the end: ended entries stay in the order they ended.
          if (this.verdicts.get(key) !== made) return;
          this.verdicts.delete(key);
          made.endedAt = Date.now();
          this.verdicts.set(key, made);
          this.ended++;
        },
        () => {
          if (this.verdicts.get(key) === made) this.verdicts.delete(key);
        },
      );
    }
    if (entry.endedAt === undefined && signal) {
      const awaited = entry;
      awaited.waiting++;
      signal.addEventListener(
        "abort",
        () => {
          // Nobody waits for it any more: if it has not started, it never will.
          if (--awaited.waiting === 0) awaited.drop.abort(signal.reason);
        },
        { once: true },
      );
    }
    return entry.verdict;
  }

  /** Ended verdicts past VERDICT_KEEP_MS, or beyond VERDICTS_KEPT ended ones, oldest first. */
  private forgetEnded(now: number): void {
    for (const [k, v] of this.verdicts) {
      if (v.endedAt === undefined) continue;
      if (now - v.endedAt <= VERDICT_KEEP_MS && this.ended < VERDICTS_KEPT) break;
      this.verdicts.delete(k);
      this.ended--;
    }
  }

  async close(): Promise<void> {
    const all = [...this.systems.values()];
    this.systems.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}

interface Verdict {
  verdict: Promise<boolean>;
  /** Gives up the verification's wait for a thread (one running runs out). */
  drop: AbortController;
  /** Requests awaiting it that have not given up. */
  waiting: number;
  endedAt: number | undefined;
}

/** The most ended verifications kept for resends (the oldest go first). */
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

export type { NodeProof, ProofNode, ProofSystem };
export { ProofSystemUnavailable };
