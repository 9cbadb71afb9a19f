// The relay's policy settings, mapped once from the environment at the composition root
// (relay.ts) and grouped by the service that reads them. Nothing below relay.ts sees the env.
import type { RelayEnv } from "@prover-boost/config";
import type { JobType, Pricing } from "@prover-boost/core";

export interface RelaySettings {
  /** Who may open auctions (services/auctions.ts). */
  sequencers: readonly string[];
  /** Signed logins and bid cancellations (services/sessions.ts, services/bids.ts). */
  login: { maxAgeMs: number; sessionTtlMs: number };
  /** Sign-ins per window per operator, counted after signature recovery; 0 = none (sessions.ts). */
  signInLimit: { perOperator: number; windowMs: number };
  /** Least hardware tier a worker must have signed to lease each job type (services/gateway.ts). */
  jobMinTier: Readonly<Record<JobType, number>>;
  /** How leases are handed out (services/gateway.ts) and what /v1/info reports of it. */
  scheduling: {
    mode: RelayEnv["SCHEDULING"];
    affinityHoldMs: number;
    maxRetryableFailsPerWorker: number;
  };
  /**
   * Where collateral lives: `ledger` (credited by the admin endpoint) or `chain` (the escrow on
   * the L1, indexed by services/chain.ts; the admin endpoint refuses).
   */
  collateral: RelayEnv["COLLATERAL"];
  /** Chain mode: the escrow and the confirmations a deposit needs, as /v1/info reports them. */
  escrow: { address: `0x${string}`; confirmations: number } | null;
  /** Collateral taken from an operator per penalized lease lapse (services/gateway.ts). */
  withholdPenaltyWei: bigint;
  /** Collateral burned per invalid proof, at most what the operator has free (services/gateway.ts). */
  invalidProofPenaltyWei: bigint;
  /** Free collateral an operator needs to lease jobs of an open-proving block (services/gateway.ts). */
  openProvingMinCollateral: bigint;
  /** Least time between an auction's close and its proof deadline (services/auctions.ts). */
  minProvingWindowMs: number;
  /** Proof system of the auctions this relay opens; verifier threads (services/proof-check.ts). */
  proofs: { system: RelayEnv["PROOF_SYSTEM"]; verifyThreads: number; verifyTimeoutMs: number };
  /** The auction pricing rule, as /v1/info reports it. */
  pricing: Pricing;
  /** The admin endpoints' bearer token; undefined disables them. */
  adminToken: string | undefined;
  /** Server-sent event streams (routes/events.ts); 0 = no cap. */
  events: {
    streamsPerIp: number;
    streamsMax: number;
    keepaliveMs: number;
    maxBufferBytes: number;
    retentionMs: number;
  };
  /** Requests per window per client IP and bids per window per prover; 0 disables (rate-limits.ts). */
  rateLimits: { perIp: number; perProver: number; windowMs: number };
  /**
   * Event-loop delay (ms, worst of the last second) above which new leases are refused with 503
   * UNAVAILABLE and Retry-After; 0 never sheds (services/load.ts).
   */
  overloadLagMs: number;
}

export function relaySettingsOf(env: RelayEnv): RelaySettings {
  return {
    sequencers: env.SEQUENCERS,
    login: { maxAgeMs: env.LOGIN_MAX_AGE_MS, sessionTtlMs: env.SESSION_TTL_MS },
    signInLimit: {
      perOperator: env.RATE_LIMIT_PER_IP === 0 ? 0 : env.SIGNIN_RATE_LIMIT_PER_OPERATOR,
      windowMs: env.SIGNIN_RATE_LIMIT_WINDOW_MS,
    },
    jobMinTier: env.JOB_MIN_TIER,
    scheduling: {
      mode: env.SCHEDULING,
      affinityHoldMs: env.AFFINITY_HOLD_MS,
      maxRetryableFailsPerWorker: env.MAX_RETRYABLE_FAILS_PER_WORKER,
    },
    collateral: env.COLLATERAL,
    escrow:
      env.COLLATERAL === "chain" && env.ESCROW_ADDRESS
        ? { address: env.ESCROW_ADDRESS, confirmations: env.L1_CONFIRMATIONS }
        : null,
    // In chain mode a penalty's burn is also sent to the escrow (`penalize`, see chargePenalty).
    withholdPenaltyWei: env.WITHHOLD_PENALTY_WEI,
    invalidProofPenaltyWei: env.INVALID_PROOF_PENALTY_WEI,
    openProvingMinCollateral: env.OPEN_PROVING_MIN_COLLATERAL,
    minProvingWindowMs: env.MIN_PROVING_WINDOW_MS,
    proofs: {
      system: env.PROOF_SYSTEM,
      verifyThreads: env.PROOF_VERIFY_THREADS,
      verifyTimeoutMs: env.PROOF_VERIFY_TIMEOUT_MS,
    },
    pricing: env.AUCTION_PRICING,
    adminToken: env.ADMIN_TOKEN,
    events: {
      streamsPerIp: env.SSE_STREAMS_PER_IP,
      streamsMax: env.SSE_STREAMS_MAX,
      keepaliveMs: env.SSE_KEEPALIVE_MS,
      maxBufferBytes: env.SSE_MAX_BUFFER_BYTES,
      retentionMs: env.EVENTS_RETENTION_MS,
    },
    rateLimits: {
      perIp: env.RATE_LIMIT_PER_IP,
      perProver: env.RATE_LIMIT_PER_PROVER,
      windowMs: env.RATE_LIMIT_WINDOW_MS,
    },
    overloadLagMs: env.OVERLOAD_LAG_MS,
  };
}
