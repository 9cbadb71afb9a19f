// The base of every error the system throws on purpose: a stable `code`, the underlying `cause`
// (kept on the standard `Error.cause`), and whether trying the same thing again may succeed.
export interface ProverBoostErrorOptions {
  cause?: unknown;
  /** Whether the same operation may succeed if tried again (default false). */
  retryable?: boolean;
}

export class ProverBoostError extends Error {
  override readonly name: string = "ProverBoostError";
  readonly retryable: boolean;
  constructor(
    readonly code: string,
    message: string,
    options: ProverBoostErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options.retryable ?? false;
  }
}

/**
 * A broken internal invariant (a bug, not the caller's input): it surfaces as 500 INTERNAL with
 * its details only in the log.
 */
export class InvariantError extends ProverBoostError {
  override readonly name = "InvariantError";
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("INTERNAL", message, options);
  }
}

export function isProverBoostError(err: unknown): err is ProverBoostError {
  return err instanceof ProverBoostError;
}

// The closed set of error codes of the public API. The HTTP status each is sent with belongs to
// the wire contract (@prover-boost/contract), not to the domain.
export const errorCodes = [
  "VALIDATION_FAILED",
  "INVALID_JSON",
  "TX_COUNT_MISMATCH",
  "TXS_HASH_MISMATCH",
  "TX_DATA_MISMATCH",
  "INVALID_SCHEDULE",
  "BAD_ADDRESS_CHECKSUM",
  "INVALID_INTEGER",
  "BAD_SIGNATURE",
  "UNAUTHORIZED",
  "SESSION_EXPIRED",
  "LOGIN_STALE",
  "ISSUED_IN_FUTURE",
  "SIGNER_NOT_ALLOWED",
  "PROVER_MISMATCH",
  "NOT_FOUND",
  "AUCTION_NOT_FOUND",
  "BLOCK_NOT_FOUND",
  "JOB_NOT_FOUND",
  "BID_NOT_FOUND",
  "PROOF_NOT_FOUND",
  "TX_NOT_FOUND",
  "BID_SUPERSEDED",
  "AUCTION_EXISTS",
  "AUCTION_CLOSED",
  "LEASE_LOST",
  "CAPACITY_EXCEEDED",
  "METHOD_NOT_ALLOWED",
  "REQUEST_TIMEOUT",
  "AUTHORIZATION_REPLAYED",
  "REFERENCE_REUSED",
  "PAYLOAD_TOO_LARGE",
  "UNSUPPORTED_MEDIA_TYPE",
  "HEADERS_TOO_LARGE",
  "FEE_ABOVE_CAP",
  "BOND_BELOW_MINIMUM",
  "QUOTE_EXPIRED",
  "WRONG_BLOCK",
  "INSUFFICIENT_COLLATERAL",
  "INVALID_PROOF",
  "AMOUNT_TOO_LARGE",
  "JOB_TYPE_NOT_DECLARED",
  "TIER_TOO_LOW",
  "RATE_LIMITED",
  "INTERNAL",
  "UNAVAILABLE",
  "COLLATERAL_ON_CHAIN",
  "L1_UNAVAILABLE",
  "REWARD_NOT_FUNDED",
] as const;

export type ErrorCode = (typeof errorCodes)[number];

/** A rule violation with a stable code; the relay turns it into the contract's error body. */
export class DomainError extends ProverBoostError {
  override readonly name = "DomainError";
  declare readonly code: ErrorCode;
  constructor(
    code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options: ProverBoostErrorOptions = {},
  ) {
    super(code, message, {
      retryable: code === "UNAVAILABLE" || code === "L1_UNAVAILABLE" || code === "RATE_LIMITED",
      ...options,
    });
  }
}

export function isDomainError(err: unknown): err is DomainError {
  return err instanceof DomainError;
}
