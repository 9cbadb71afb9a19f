// What one pool thread runs: its own proof systems (for honk, its own bb.js instance), made on
// first use and kept for the thread's life.
import { createProofSystem } from "./system.ts";
import type { NodeProof, ProofNode, ProofSystem, ProofSystemName } from "./types.ts";

export type PoolTask =
  | { op: "prove"; system: ProofSystemName; node: ProofNode }
  | { op: "verify"; system: ProofSystemName; node: ProofNode; proof: NodeProof };

const systems = new Map<ProofSystemName, ProofSystem>();

function systemOf(name: ProofSystemName): ProofSystem {
  let system = systems.get(name);
  if (!system) {
    system = createProofSystem(name);
    systems.set(name, system);
  }
  return system;
}

export async function runPoolTask(task: PoolTask): Promise<NodeProof | boolean> {
  const system = systemOf(task.system);
  if (task.op === "prove") return system.prove(task.node);
  return system.verify(task.node, task.proof);
}
