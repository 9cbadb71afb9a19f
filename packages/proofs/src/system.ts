import { honkProofSystem } from "./honk.ts";
import { simProofSystem } from "./sim.ts";
import type { ProofSystem, ProofSystemName } from "./types.ts";

/** A proof system that proves and verifies in the calling thread. */
export function createProofSystem(name: ProofSystemName): ProofSystem {
  switch (name) {
    case "sim":
      return simProofSystem();
    case "honk":
      return honkProofSystem();
    default:
      throw new TypeError(`unknown proof system ${String(name)}`);
  }
}
