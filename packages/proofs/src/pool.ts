// createProofPool: the same ProofSystem, with prove and verify run on piscina worker threads so
// the calling event loop stays free. Each thread owns its own proof system instance; outputOf,
// circuitOf and verificationKey need no prover and are answered in the calling thread.
import { availableParallelism } from "node:os";
import type { JobType } from "@prover-boost/core";
import pLimit from "p-limit";
import { Piscina } from "piscina";
import type { Hex } from "viem";
import { ProofSystemUnavailable } from "./honk.ts";
import { isUnavailableAnswer, type PoolAnswer, type PoolTask } from "./pool-task.ts";
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
   * A verification still running this long after it was handed to its thread (its wait for a
   * thread not counted; a new thread's start, bb.js's about a second, counted) is given up: it
   * rejects with ProofSystemUnavailable, not a verdict, and its thread is ended (the next task
   * starts a new one, paying that start again, so keep it well above it). Default: no limit.
   * The wait for a thread is bounded by the caller's own signal.
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

/** Why a task's thread was ended: it ran past its limit. */
class RunLimit extends Error {
  constructor(readonly ms: number) {
    super(`ran past ${ms} ms`);
  }
}

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
  const pool = new Piscina<PoolTask, PoolAnswer>({
    filename: opts.threadFile ?? poolThreadFile(),
    minThreads: 0,
    maxThreads,
    idleTimeout: opts.idleTimeoutMs ?? 600_000,
  });
  // Tasks wait for a thread here, not in piscina's queue: one given up while it waits touches no
  // thread, and piscina, handed at most one task a thread, starts a thread for each one handed
  // to it (with minThreads 0 it would not replace an ended thread for tasks already queued).
  const threads = pLimit(maxThreads);
  let closed: Promise<void> | undefined;
  const live = () => {
    if (closed) throw new Error("the proof pool is closed");
  };

  /**
   * Runs a task once a thread is free. `signal` gives up the wait for one (rejecting with its
   * reason); once running, it ends the thread if `endOnAbort`, else it is ignored: the task runs
   * out on its thread and its caller gets its answer. `limitMs`: a task still running that long
   * after it was handed to its thread ends the thread, as bb.js stuck in its wasm yields to
   * nothing else.
   */
  const onThread = (
    task: PoolTask,
    o: { signal?: AbortSignal | undefined; endOnAbort: boolean; limitMs?: number | undefined },
  ): Promise<NodeProof | boolean> => {
    const { signal } = o;
    signal?.throwIfAborted();
    let gaveUp = false;
    let started = false;
    const running = new AbortController();
    const turn = threads(async () => {
      if (gaveUp || closed) return undefined;
      started = true;
      const timer =
        o.limitMs === undefined
          ? undefined
          : setTimeout(() => running.abort(new RunLimit(o.limitMs!)), o.limitMs);
      const end = () => running.abort(signal?.reason);
      if (o.endOnAbort) signal?.addEventListener("abort", end, { once: true });
      try {
        return await pool.run(task, { signal: running.signal });
      } catch (err) {
        const reason: unknown = running.signal.reason;
        if (reason instanceof RunLimit) {
          throw new ProofSystemUnavailable(
            `the ${name} ${task.op === "verify" ? "verifier" : "prover"} gave no answer within ${reason.ms} ms on its thread; the thread was ended`,
            { cause: err },
          );
        }
        throw err;
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener("abort", end);
      }
    });
    return new Promise<NodeProof | boolean>((resolve, reject) => {
      const leave = () => {
        if (started && !o.endOnAbort) return;
        gaveUp = true;
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", leave, { once: true });
      turn.then(
        (answer) => {
          signal?.removeEventListener("abort", leave);
          if (answer === undefined) reject(new Error("the proof pool is closed"));
          else if (isUnavailableAnswer(answer)) {
            reject(new ProofSystemUnavailable(answer.proofSystemUnavailable));
          } else resolve(answer);
        },
        (err: unknown) => {
          signal?.removeEventListener("abort", leave);
          reject(err);
        },
      );
    });
  };

  return {
    name,
    async prove(node: ProofNode, o: { signal?: AbortSignal } = {}): Promise<NodeProof> {
      live();
      // A proof no longer wanted (its lease lost, the worker stopping) ends the thread proving
      // it rather than holding it to its end.
      const task: PoolTask = { op: "prove", system: name, node };
      return (await onThread(task, { signal: o.signal, endOnAbort: true })) as NodeProof;
    },
    async verify(
      node: ProofNode,
      proof: NodeProof,
      o: { signal?: AbortSignal } = {},
    ): Promise<boolean> {
      live();
      // A verification is short: one already running runs out (its thread is worth more than the
      // bb.js start a new one would pay); only verifyTimeoutMs ends it. The signal gives up the
      // wait for a thread only.
      const task: PoolTask = { op: "verify", system: name, node, proof };
      return (await onThread(task, {
        signal: o.signal,
        endOnAbort: false,
        limitMs: verifyTimeoutMs,
      })) as boolean;
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
