// JSON shapes of the relay API v1 as they travel: uint256 amounts as decimal strings, small
// integers (block numbers, slots, bps, counts, unix ms) as numbers, addresses checksummed.
import type { JobType, Stage } from "@prover-boost/core";

export interface AuctionJson {
  blockNumber: number;
  slot: number;
  txCount: number;
  txsHash: `0x${string}`;
  blockReward: string;
  minBond: string;
  maxFeeBps: number;
  biddingClosesAt: number;
  proofDeadline: number;
}

export interface QuoteJson {
  epochToProve: number;
  validUntilSlot: number;
  bondAmount: string;
  prover: `0x${string}`;
  basisPointFee: number;
}

export interface WorkerLoginJson {
  operator: `0x${string}`;
  workerId: string;
  issuedAt: number;
  capacity: number;
  jobTypes: JobType[];
  hardware: { cores?: number; memoryMb?: number; gpus?: number; [k: string]: unknown };
}

export type AuctionStatus = "open" | "committed" | "unclaimed";

export interface AuctionView extends AuctionJson {
  sequencer: `0x${string}`;
  status: AuctionStatus;
  bidCount: number;
  createdAt: number;
  closedAt: number | null;
  winner: { bidId: string; quote: QuoteJson; signature: `0x${string}` } | null;
  settlementFeeBps: number | null;
}

/** A prover's public collateral; bonds of live (sealed) bids are inside `available`. */
export interface Collateral {
  deposited: string;
  locked: string;
  slashed: string;
  available: string;
}

export interface ProverView {
  address: `0x${string}`;
  collateral: Collateral;
  blocksWon: number;
  proofsDelivered: number;
  penalties: number;
  penaltiesByKind: Partial<Record<"withholding" | "invalid_proof" | "slash", number>>;
  slashes: number;
  /** Wei paid to this address: rewards, and slash compensation for sequencers. */
  earnings: string;
}

export interface LeasedJob {
  id: string;
  type: JobType;
  blockNumber: number;
  level: number;
  index: number;
  inputs: `0x${string}`[];
  children: { id: string; proof: `0x${string}` }[];
  leaseExpiresAt: number;
}

/** POST /v1/jobs/{id}/fail: requeued (with the hand-backs left to this worker) or failed. */
export type FailAnswer = { status: "requeued"; retriesLeft: number } | { status: "failed" };

export interface PayoutJson {
  recipient: `0x${string}`;
  role: "sequencer" | "prover" | "submitter";
  amount: string;
}

export interface BlockView {
  number: number;
  stage: Stage;
  stages: Partial<Record<Stage, number>>;
  winner: `0x${string}` | null;
  feeBps: number | null;
  tree: { total: number; proven: number; leased: number; queued: number };
  rootProof: `0x${string}` | null;
  payouts: PayoutJson[];
}

export interface TreeNodeView {
  id: string;
  type: JobType;
  level: number;
  index: number;
  status: "queued" | "leased" | "proven" | "failed";
  worker: string | null;
  children: string[];
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

/** GET /v1/info: what clients need to sign and schedule against this relay. */
export interface RelayInfo {
  domain: { name: string; version: string; chainId?: number; verifyingContract?: `0x${string}` };
  slotDurationMs: number;
  genesisTimeMs: number;
  pricing: "first" | "second";
  leaseMs: number;
  signatureBackend: "native" | "js";
  /** priority, or affinity: among equally urgent jobs, a parent of a node the worker proved. */
  scheduling: "priority" | "affinity";
  /** Retryable fails of one job by one worker before it is no longer offered that job. */
  maxRetryableFailsPerWorker: number;
}
