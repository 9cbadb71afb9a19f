export { createProofPool, type ProofPoolOptions } from "./pool.ts";
export { simInputOf, simProofSystem } from "./sim.ts";
export { createProofSystem } from "./system.ts";
export {
  isProofSystemName,
  type NodeProof,
  type ProofNode,
  type ProofSystem,
  type ProofSystemName,
  proofSystemNames,
} from "./types.ts";
