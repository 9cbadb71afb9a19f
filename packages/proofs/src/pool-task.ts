// What one pool thread runs: its own proof systems (for honk, its own bb.js instance), made on
// first use and kept for the thread's life.
import { ProofSystemUnavailable } from "./honk.ts";
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

/**
 * A proof system that could not run, as a thread answers it: an error crosses to the calling
 * thread as a plain Error (its class is lost on the way), so the pool could not tell it from a
 * failure of the proof system itself.
 */
export interface UnavailableAnswer {
  proofSystemUnavailable: string;
}

export type PoolAnswer = NodeProof | boolean | UnavailableAnswer;

export function isUnavailableAnswer(a: unknown): a is UnavailableAnswer {
  return typeof (a as Partial<UnavailableAnswer> | null)?.proofSystemUnavailable === "string";
}

/** A thread's task runner over the proof systems `systemOf` gives (a seam for tests). */
export function poolTaskRunner(
  systemFor: (name: ProofSystemName) => ProofSystem,
): (task: PoolTask) => Promise<PoolAnswer> {
  return async (task) => {
    try {
      const system = systemFor(task.system);
      if (task.op === "prove") return await system.prove(task.node);
      return await system.verify(task.node, task.proof);
    } catch (err) {
      if (err instanceof ProofSystemUnavailable) return { proofSystemUnavailable: err.message };
      throw err;
    }
  };
}

export const runPoolTask = poolTaskRunner(systemOf);
