export { maxGates, newBarretenberg, proofSettings, setupPoints, verifierTarget } from "./bb.ts";
export { type CircuitArtifact, circuitNames, loadArtifact } from "./circuits.ts";
export {
  childCount,
  FIELD_MODULUS,
  fieldHex,
  nodeInputs,
  parseField,
  splitHash,
} from "./fields.ts";
export { honkProofSystem, ProofSystemUnavailable } from "./honk.ts";
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
