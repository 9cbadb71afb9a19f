// Defaults shared by the worker pool and its command line (kept free of heavy imports).

/** How long one lease request long-polls the relay for a job. */
export const DEFAULT_WAIT_MS = 10_000;

/**
 * Proofs rejected as invalid in a row (across the agent's workers, none accepted between) after
 * which the agent stops: each costs the operator a penalty, and a prover whose proofs the relay
 * keeps refusing (another circuit or prover version) would otherwise pay for ever.
 */
export const DEFAULT_MAX_REJECTIONS = 3;

/**
 * Jobs in a row (no proof accepted between) leased in answers the agent cannot read, after which
 * the pool stops: each is handed back as a fail.
 */
export const UNREADABLE_MAX = 3;

/**
 * Give up handing a job back after this long (the lease lapses on the relay anyway); a stopping
 * agent gives up sooner, when its stop's reserve for hand-backs runs out (JobRun.shutdown).
 */
export const HAND_BACK_BUDGET_MS = 10_000;
