// createProofPool: the same ProofSystem, with prove and verify run on piscina worker threads so
// the calling event loop stays free. Each thread owns its own proof system instance; outputOf,
// circuitOf and verificationKey need no prover and are answered in the calling thread.
import { availableParallelism } from "node:os";
import type { JobType } from "@prover-boost/core";
import { Piscina } from "piscina";
import type { Hex } from "viem";
import { ProofSystemUnavailable } from "./honk.ts";
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
  /**
   * A verification with no verdict this long after it was asked for (its wait for a thread
   * included) is given up: it rejects with ProofSystemUnavailable, not a verdict, and a thread
   * still running it is ended (a new one takes its place, paying its start). Default: no deadline.
   */
  verifyTimeoutMs?: number;
  /** The module each thread runs, its default export given every task (default: poolThreadFile()). */
  threadFile?: string;
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

/** Node's longest timer, ms. */
const MAX_TIMER_MS = 2_147_483_647;

export function createProofPool(name: ProofSystemName, opts: ProofPoolOptions = {}): ProofSystem {
  const maxThreads = opts.maxThreads ?? Math.max(1, availableParallelism() - 1);
  if (!Number.isInteger(maxThreads) || maxThreads < 1) {
    throw new RangeError(`maxThreads must be a positive integer, got ${maxThreads}`);
  }
  const { verifyTimeoutMs } = opts;
  if (
    verifyTimeoutMs !== undefined &&
    !(Number.isInteger(verifyTimeoutMs) && verifyTimeoutMs >= 1 && verifyTimeoutMs <= MAX_TIMER_MS)
  ) {
    throw new RangeError(`verifyTimeoutMs must be 1 to ${MAX_TIMER_MS} ms, got ${verifyTimeoutMs}`);
  }
  const local = createProofSystem(name);
  const pool = new Piscina<PoolTask, NodeProof | boolean>({
    filename: opts.threadFile ?? poolThreadFile(),
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
    async prove(node: ProofNode, o: { signal?: AbortSignal } = {}): Promise<NodeProof> {
      live();
      const task: PoolTask = { op: "prove", system: name, node };
      // Aborting a proof under way ends its thread: a proof no longer wanted (its lease lost,
      // the worker stopping) does not hold a proving thread to its end.
      return (await pool.run(task, o.signal ? { signal: o.signal } : {})) as NodeProof;
    },
    async verify(node: ProofNode, proof: NodeProof): Promise<boolean> {
      live();
      const task: PoolTask = { op: "verify", system: name, node, proof };
      if (verifyTimeoutMs === undefined) return (await pool.run(task)) as boolean;
      // A hung verifier (bb.js stuck in its wasm) would otherwise hold its caller, and its thread,
      // for good. Aborting a running task makes piscina end the thread it runs on.
      const deadline = new AbortController();
      const timer = setTimeout(() => deadline.abort(), verifyTimeoutMs);
      try {
        return (await pool.run(task, { signal: deadline.signal })) as boolean;
      } catch (err) {
        if (!deadline.signal.aborted) throw err;
        throw new ProofSystemUnavailable(
          `the ${name} verifier gave no verdict within ${verifyTimeoutMs} ms`,
          { cause: err },
        );
      } finally {
        clearTimeout(timer);
      }
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
