// createProofPool: the same ProofSystem, with prove and verify run on piscina worker threads so
// the calling event loop stays free. Each thread owns its own proof system instance; outputOf,
// circuitOf and verificationKey need no prover and are answered in the calling thread.
import { availableParallelism } from "node:os";
import type { JobType } from "@prover-boost/core";
import { Piscina } from "piscina";
import type { Hex } from "viem";
import type { PoolTask } from "./pool-task.ts";
import { createProofSystem } from "./system.ts";
import type { NodeProof, ProofNode, ProofSystem, ProofSystemName } from "./types.ts";

export interface ProofPoolOptions {
  /** Threads at most; default: the machine's parallelism minus one, at least 1. */
  maxThreads?: number;
  /**
   * An idle thread ends after this long, ms; default 10 minutes. A new thread pays the start of
   * its bb.js instance (about a second) before its first task.
   */
  idleTimeoutMs?: number;
}

/**
 * The file a pool thread runs. From the sources (tsx, vitest) this module is pool.ts and its
 * threads load the TypeScript task through tsx (pool-worker.mjs); in a build this code sits in a
 * chunk of some dist/, and every build that bundles the pool emits dist/pool-thread.js beside it.
 */
export function poolThreadFile(from: string = import.meta.url): string {
  const source = new URL(from).pathname.endsWith(".ts");
  return new URL(source ? "./pool-worker.mjs" : "./pool-thread.js", from).href;
}

export function createProofPool(name: ProofSystemName, opts: ProofPoolOptions = {}): ProofSystem {
  const maxThreads = opts.maxThreads ?? Math.max(1, availableParallelism() - 1);
  if (!Number.isInteger(maxThreads) || maxThreads < 1) {
    throw new RangeError(`maxThreads must be a positive integer, got ${maxThreads}`);
  }
  const local = createProofSystem(name);
  const pool = new Piscina<PoolTask, NodeProof | boolean>({
    filename: poolThreadFile(),
    minThreads: 0,
    maxThreads,
    idleTimeout: opts.idleTimeoutMs ?? 600_000,
  });
  let closed: Promise<void> | undefined;
  const live = () => {
    if (closed) throw new Error("the proof pool is closed");
  };
  return {
    name,
    async prove(node: ProofNode): Promise<NodeProof> {
      live();
      return (await pool.run({ op: "prove", system: name, node })) as NodeProof;
    },
    async verify(node: ProofNode, proof: NodeProof): Promise<boolean> {
      live();
      return (await pool.run({ op: "verify", system: name, node, proof })) as boolean;
    },
    outputOf(node: ProofNode, proof: NodeProof): Hex {
      return local.outputOf(node, proof);
    },
    circuitOf(type: JobType): string {
      return local.circuitOf(type);
    },
    verificationKey(type: JobType): Promise<Hex> {
      return local.verificationKey(type);
    },
    close(): Promise<void> {
      closed ??= Promise.all([pool.destroy(), local.close()]).then(() => undefined);
      return closed;
    },
  };
}
