// The proof broker's vocabulary (after Aztec's prover broker and agents): its options, the
// proving agent (a signed-in worker session), and what each step of a lease's life comes to.
import { ProverBoostError } from "@prover-boost/core";
import type { Job } from "bullmq";
import type { ProofJobData, QueueKind } from "../catalog.ts";
import type { Lease } from "./records.ts";

export interface ProofBrokerOptions {
  /** LEASE_MS: a lease lapses without a heartbeat within this time. */
  leaseMs: number;
  /**
   * LEASE_MAX_MS: the longest a lease may be held, from its grant, however its worker heartbeats
   * (at least LEASE_MS); past it the lease runs out like any other. 0 or absent: no limit.
   */
  leaseMaxMs?: number;
  /** Hand-backs (and lapses, bad proofs) of one job one agent may make before it is barred. */
  maxRetryableFailsPerAgent: number;
  /** Failed attempts of one job across every agent; at the cap the job is failed for good. */
  maxJobAttempts: number;
  /** Failed attempts of one job by one operator's agents together; at the cap it is barred. */
  maxJobFailsPerOperator: number;
  /** How often this broker refreshes its presence (default min(LEASE_MS / 4, 1000) ms). */
  presenceIntervalMs?: number;
  /**
   * True while this broker's process is too far behind to read heartbeats on time (the relay's
   * event loop, past OVERLOAD_LAG_MS). Its presence then starts a new stretch, so a lapse whose
   * last window it spent behind is not counted against the worker (presence.ts).
   */
  behind?: () => boolean;
}

/** A signed-in worker session as the broker sees it. */
export interface ProvingAgent {
  sessionId: string;
  operator: string;
  workerName: string;
  capacity: number;
  jobTypes: readonly string[];
  kinds: readonly QueueKind[];
  affinity: boolean;
}

export class LeaseLostError extends ProverBoostError {
  override readonly name = "LeaseLostError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("LEASE_LOST", message, options);
  }
}

/** The agent's capacity is taken by live leases. */
export class AgentAtCapacityError extends ProverBoostError {
  override readonly name = "AgentAtCapacityError";
  constructor(message: string, options?: { cause?: unknown }) {
    // Retryable: a lease ending frees the capacity.
    super("CAPACITY_EXCEEDED", message, { ...options, retryable: true });
  }
}

export interface LeaseOutcome {
  leased?: {
    lease: Lease;
    job: Job<ProofJobData>;
    kind: QueueKind;
    /**
     * A parent's children's results as they were when the lease was recorded (BullMQ's
     * "<job key>:processed" hash, field -> raw value): see ProofFabric.childProofs.
     */
    childResults?: Record<string, string>;
  };
  /** Blocks looked at. */
  blocks: Set<number>;
  /** Jobs the agent may not have were passed over (others may take them). */
  passedOver: boolean;
  /** Jobs found at their attempt cap and failed for good on the way. */
  failed: string[];
}

/** What a give-back, fail or bad proof came to. */
export type ErrorOutcome =
  | { lost: true }
  | { lost: false; status: "requeued" | "failed"; retriesLeft: number; capped: boolean };

export interface Lapse {
  lease: Lease;
  /** No broker was present through the lease's last window: not the worker's fault. */
  forgiven: boolean;
  /** The lapse used the job's last attempt (it is failed on its next take). */
  capped: boolean;
}
