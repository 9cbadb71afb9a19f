import type { JobType } from "@prover-boost/core";
import type { Hex } from "viem";

export type ProofSystemName = "sim" | "honk";

export const proofSystemNames: readonly ProofSystemName[] = ["sim", "honk"];

export function isProofSystemName(s: string): s is ProofSystemName {
  return (proofSystemNames as readonly string[]).includes(s);
}

/** What a node of a block's proof tree is proved over. */
export interface ProofNode {
  /** base | merge | block_root | single_tx_block_root | empty_block_root */
  type: JobType;
  blockNumber: number;
  level: number;
  index: number;
  /** A base job's transaction hash, 32 bytes. */
  txHash?: Hex;
  /** The children's accepted public outputs, left to right (32-byte hex each). */
  childOutputs: readonly Hex[];
}

/** A proof and its public inputs (32-byte hex field elements). */
export interface NodeProof {
  proof: Hex;
  publicInputs: Hex[];
}

export interface ProofSystem {
  readonly name: ProofSystemName;
  /**
   * `signal`: the proof is no longer wanted. A pool ends the thread proving it (a new one takes
   * its place); a system proving in the caller's thread only checks it before it starts.
   */
  prove(node: ProofNode, opts?: { signal?: AbortSignal }): Promise<NodeProof>;
  /**
   * True iff the proof verifies under the circuit's verification key AND its public inputs are
   * exactly those expected for `node` (block/level/index binding, txHash, childOutputs).
   * `signal`: give up the wait for a pool's thread (rejecting with its reason); a verification
   * already running runs to its verdict.
   */
  verify(node: ProofNode, proof: NodeProof, opts?: { signal?: AbortSignal }): Promise<boolean>;
  /** The public output a parent consumes (32-byte hex), read from an accepted proof. */
  outputOf(node: ProofNode, proof: NodeProof): Hex;
  /** The circuit of a job type, e.g. "prover_boost_merge" (sim: "sim/<type>"). */
  circuitOf(type: JobType): string;
  /** The verification key (hex) of a job type's circuit; sim has none and returns "0x". */
  verificationKey(type: JobType): Promise<Hex>;
  close(): Promise<void>;
}
