// Error kinds of the worker: backend failures (with a retryable flag), why a job was aborted,
// and how an answer of the relay is to be handled.
import { ProverBoostError } from "@prover-boost/core";
import { type ErrorCode, RelayAnswerError, RelayError } from "@prover-boost/sdk";

/**
 * A backend failure. `retryable: false` tells the relay the job itself is bad (it is failed, not
 * re-queued); any other error a backend throws is treated as retryable.
 */
export class BackendError extends ProverBoostError {
  override readonly name = "BackendError";
  constructor(message: string, retryable = true, options: { cause?: unknown } = {}) {
    super("BACKEND_FAILED", message, { ...options, retryable });
  }
}

/** Whether a backend error allows the job to be retried (true unless it says otherwise). */
export function isRetryable(err: unknown): boolean {
  if (err instanceof BackendError) return err.retryable;
  // Our other errors' flags speak of their own operation (a request, a lease), not of the job:
  // only a backend's verdict fails a job for good.
  if (err instanceof ProverBoostError) return true;
  if (err && typeof err === "object" && "retryable" in err) return err.retryable !== false;
  return true;
}

/** The reason a job's AbortSignal fired. */
export class JobAbort extends ProverBoostError {
  override readonly name = "AbortError";
  constructor(
    readonly kind: "lease_lost" | "session_lost" | "shutdown",
    message: string,
    /** A shutdown's: a proof already done is offered once more before the job is released. */
    readonly offerProof = false,
  ) {
    super("JOB_ABORTED", message);
  }
}

export type RelayFailure =
  /** Network error, timeout, rate limit, relay fault or overload: try again later. */
  | "transient"
  /** The session is gone (unknown token, expired): sign in again. */
  | "unauthorized"
  /** The lease is not (or no longer) ours, or the job is gone. */
  | "lease_lost"
  /** Well-formed but refused (an invalid proof). */
  | "rejected"
  /** Our request was wrong; retrying the same request will not help. */
  | "client_error";

/** How the worker handles each error code of the contract. */
const failureOf: Record<ErrorCode, RelayFailure> = {
  VALIDATION_FAILED: "client_error",
  INVALID_JSON: "client_error",
  TX_COUNT_MISMATCH: "client_error",
  TXS_HASH_MISMATCH: "client_error",
  TX_DATA_MISMATCH: "client_error",
  INVALID_SCHEDULE: "client_error",
  BAD_ADDRESS_CHECKSUM: "client_error",
  INVALID_INTEGER: "client_error",
  METHOD_NOT_ALLOWED: "client_error",
  REQUEST_TIMEOUT: "transient",
  HEADERS_TOO_LARGE: "client_error",
  BAD_SIGNATURE: "unauthorized",
  UNAUTHORIZED: "unauthorized",
  SESSION_EXPIRED: "unauthorized",
  LOGIN_STALE: "unauthorized",
  ISSUED_IN_FUTURE: "unauthorized",
  AUTHORIZATION_REPLAYED: "lease_lost",
  REFERENCE_REUSED: "lease_lost",
  TIER_TOO_LOW: "rejected",
  SIGNER_NOT_ALLOWED: "client_error",
  PROVER_MISMATCH: "client_error",
  NOT_FOUND: "lease_lost",
  AUCTION_NOT_FOUND: "lease_lost",
  BLOCK_NOT_FOUND: "lease_lost",
  JOB_NOT_FOUND: "lease_lost",
  PROOF_NOT_FOUND: "lease_lost",
  TX_NOT_FOUND: "lease_lost",
  BID_NOT_FOUND: "lease_lost",
  BID_SUPERSEDED: "lease_lost",
  AUCTION_EXISTS: "lease_lost",
  AUCTION_CLOSED: "lease_lost",
  LEASE_LOST: "lease_lost",
  CAPACITY_EXCEEDED: "lease_lost",
  PAYLOAD_TOO_LARGE: "client_error",
  UNSUPPORTED_MEDIA_TYPE: "client_error",
  FEE_ABOVE_CAP: "rejected",
  BOND_BELOW_MINIMUM: "rejected",
  QUOTE_EXPIRED: "rejected",
  WRONG_BLOCK: "rejected",
  INSUFFICIENT_COLLATERAL: "rejected",
  INVALID_PROOF: "rejected",
  AMOUNT_TOO_LARGE: "rejected",
  JOB_TYPE_NOT_DECLARED: "rejected",
  RATE_LIMITED: "transient",
  INTERNAL: "transient",
  UNAVAILABLE: "transient",
  COLLATERAL_ON_CHAIN: "lease_lost",
  L1_UNAVAILABLE: "transient",
  REWARD_NOT_FUNDED: "rejected",
};

/**
 * What an error of a relay call means for the worker, by the contract's error code. An answer
 * without a known code (a newer relay, a proxy's error page) falls back to its HTTP status.
 */
export function classifyRelayError(err: unknown): RelayFailure {
  if (!(err instanceof RelayError)) return "transient";
  if (err.code !== "UNKNOWN") return failureOf[err.code];
  const { status } = err;
  if (status === 408 || status === 429 || status >= 500) return "transient";
  if (status === 401) return "unauthorized";
  return "client_error";
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}

/**
 * A job the relay leased to this worker in an answer the worker could not read (a lease's `job`,
 * or a result's `next`), by the id that could be read, if any: it is handed back rather than left
 * to lapse as withholding.
 */
export function unreadLeaseOf(err: unknown): string | undefined {
  if (!(err instanceof RelayAnswerError)) return undefined;
  const body = err.body as { job?: { id?: unknown }; next?: { id?: unknown } } | null | undefined;
  const id =
    err.operation === "leaseJob"
      ? body?.job?.id
      : err.operation === "submitResult"
        ? body?.next?.id
        : undefined;
  return typeof id === "string" && id.length > 0 && id.length <= 64 ? id : undefined;
}

/** Whether an answer to a result that could not be read says the proof was accepted. */
export function acceptedInUnreadAnswer(err: unknown): boolean {
  if (!(err instanceof RelayAnswerError) || err.operation !== "submitResult") return false;
  return (err.body as { status?: unknown } | null | undefined)?.status === "accepted";
}
