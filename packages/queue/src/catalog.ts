// The job catalog: which BullMQ queue carries each proof type, and the order in which a worker's
// eligible queues are tried (nearer the root first: a root or merge gates more work than a base).
import type { JobType } from "@prover-boost/core";

export type QueueKind = "root" | "merge" | "base";

export const queueOrder: readonly QueueKind[] = ["root", "merge", "base"];

export function queueFor(type: JobType): QueueKind {
  if (type === "base") return "base";
  if (type === "merge") return "merge";
  return "root";
}

/**
 * The queues a block's tree of `txCount` transactions has: its root's always, a base job per
 * transaction from one on, merges from three (two bases hang from the root itself).
 */
export function treeQueueKinds(txCount: number): QueueKind[] {
  if (txCount === 0) return ["root"];
  return txCount < 3 ? ["root", "base"] : ["root", "merge", "base"];
}

/** BullMQ job id of a tree node: "<block>-<level>-<index>" (BullMQ ids may not contain ':'). */
export const jobId = (blockNumber: number, level: number, index: number): string =>
  `${blockNumber}-${level}-${index}`;

const jobIdPattern = /^(\d{1,10})-(\d{1,3})-(\d{1,7})$/;

export function parseJobId(
  id: string,
): { blockNumber: number; level: number; index: number } | null {
  const m = jobIdPattern.exec(id);
  if (!m) return null;
  return { blockNumber: Number(m[1]), level: Number(m[2]), index: Number(m[3]) };
}

/** The queue of a node that has children: the root's (level 0) or else the merges'. */
export const parentQueueOf = (parentId: string): QueueKind =>
  parseJobId(parentId)?.level === 0 ? "root" : "merge";

/**
 * The job data kept in Redis: what a worker and the proof check need, all small (a base job's
 * transaction hash; children by id). Children's proofs come from BullMQ's children values,
 * except in a tree rebuilt from Postgres after Redis lost it: children proven before the loss
 * are not jobs again, and their proofs travel in `proofs` (child id -> proof) instead.
 */
export interface ProofJobData {
  blockNumber: number;
  type: JobType;
  level: number;
  index: number;
  inputs: `0x${string}`[];
  children: string[];
  proofs?: Record<string, `0x${string}`>;
  /** The block's proof system (its auction's), which the relay verifies with; absent: "sim". */
  proofSystem?: string;
}

/**
 * What a completed job returns to BullMQ (and so to its parent): the node's accepted public
 * output and who made it. `proof` is that output: for the simulated system a node's output is its
 * proof; for a real system the proof itself is in Postgres's proof store, never in Redis.
 */
export interface ProofResult {
  proof: `0x${string}`;
  operator: string;
  worker: string;
}
