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

// The closed set of error codes of the public API and the HTTP status each maps to.
export const errorStatus = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  TX_COUNT_MISMATCH: 400,
  TXS_HASH_MISMATCH: 400,
  INVALID_SCHEDULE: 400,
  BAD_SIGNATURE: 401,
  UNAUTHORIZED: 401,
  SESSION_EXPIRED: 401,
  LOGIN_STALE: 401,
  SIGNER_NOT_ALLOWED: 403,
  PROVER_MISMATCH: 403,
  NOT_FOUND: 404,
  AUCTION_NOT_FOUND: 404,
  BLOCK_NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  BID_NOT_FOUND: 404,
  BID_SUPERSEDED: 409,
  AUCTION_EXISTS: 409,
  AUCTION_CLOSED: 409,
  LEASE_LOST: 409,
  CAPACITY_EXCEEDED: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  FEE_ABOVE_CAP: 422,
  BOND_BELOW_MINIMUM: 422,
  QUOTE_EXPIRED: 422,
  WRONG_BLOCK: 422,
  INSUFFICIENT_COLLATERAL: 422,
  INVALID_PROOF: 422,
  AMOUNT_TOO_LARGE: 422,
  JOB_TYPE_NOT_DECLARED: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

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
      retryable: code === "UNAVAILABLE" || code === "RATE_LIMITED",
      ...options,
    });
  }
  get status(): number {
    return errorStatus[this.code];
  }
}

export function isDomainError(err: unknown): err is DomainError {
  return err instanceof DomainError;
}
