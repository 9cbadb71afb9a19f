// The simulated prover ("sim"). A SIMULATION, not a zero-knowledge proof: a node's proof is
// keccak256 over its job type, block number, level, index, its own inputs and its children's
// proofs in order. The relay re-computes it to check a submission, so a block's root proof
// depends only on its transactions, never on which worker proved what.
import { encodeAbiParameters, type Hex, keccak256 } from "viem";
import type { JobType } from "./tree.ts";

export interface SimProofInput {
  type: JobType;
  blockNumber: number;
  level: number;
  index: number;
  /** The node's own inputs: a base job's transaction hash; empty for other nodes. */
  inputs: readonly Hex[];
  /** Children's proofs, left to right. */
  children: readonly Hex[];
}

const params = [
  { type: "string" },
  { type: "uint256" },
  { type: "uint32" },
  { type: "uint32" },
  { type: "bytes32[]" },
  { type: "bytes32[]" },
] as const;

export function simProof(input: SimProofInput): Hex {
  return keccak256(
    encodeAbiParameters(params, [
      `prover-boost/sim/v1/${input.type}`,
      BigInt(input.blockNumber),
      input.level,
      input.index,
      input.inputs,
      input.children,
    ]),
  );
}

export function verifySimProof(input: SimProofInput, proof: string): boolean {
  return proof.toLowerCase() === simProof(input);
}
