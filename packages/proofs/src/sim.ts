// The simulated proof system. A SIMULATION, not a zero-knowledge proof: a node's "proof" is
// core's simProof (keccak256 over type, block, level, index, the base's transaction hash and the
// children's outputs), it has no public inputs, and its output is the proof itself. Byte for
// byte what workers and relays computed before proof systems existed.
import { type JobType, simProof } from "@prover-boost/core";
import { type Hex, isHex } from "viem";
import type { NodeProof, ProofNode, ProofSystem } from "./types.ts";

/** The core simProof input of a node: the base's txHash is its only own input. */
export function simInputOf(node: ProofNode) {
  return {
    type: node.type,
    blockNumber: node.blockNumber,
    level: node.level,
    index: node.index,
    inputs: node.txHash === undefined ? [] : [node.txHash],
    children: node.childOutputs,
  };
}

export function simProofSystem(): ProofSystem {
  return {
    name: "sim",
    async prove(node: ProofNode, opts: { signal?: AbortSignal } = {}): Promise<NodeProof> {
      opts.signal?.throwIfAborted();
      return { proof: simProof(simInputOf(node)), publicInputs: [] };
    },
    async verify(node: ProofNode, proof: NodeProof): Promise<boolean> {
      if (proof.publicInputs.length !== 0) return false;
      if (!isHex(proof.proof, { strict: true }) || proof.proof.length !== 66) return false;
      try {
        return proof.proof.toLowerCase() === simProof(simInputOf(node));
      } catch {
        // A node whose txHash or child outputs are not 32-byte hex cannot be encoded.
        return false;
      }
    },
    outputOf(_node: ProofNode, proof: NodeProof): Hex {
      return proof.proof.toLowerCase() as Hex;
    },
    circuitOf(type: JobType): string {
      return `sim/${type}`;
    },
    async verificationKey(): Promise<Hex> {
      return "0x";
    },
    async close(): Promise<void> {},
  };
}
