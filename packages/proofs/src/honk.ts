import type { ProofSystem } from "./types.ts";

export function honkProofSystem(): ProofSystem {
  throw new Error("the honk proof system is not built yet");
}
