// The error side of the contract: one body for every error answer, and the HTTP status of each
// code. The codes themselves are the domain's (core's `ErrorCode`); which status carries them is
// the wire's business, so it lives here.
import { type ErrorCode, errorCodes } from "@prover-boost/core";
import { z } from "zod";

/** The HTTP status each error code is sent with. */
export const errorStatus = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  TX_COUNT_MISMATCH: 400,
  TXS_HASH_MISMATCH: 400,
  TX_DATA_MISMATCH: 400,
  INVALID_SCHEDULE: 400,
  BAD_ADDRESS_CHECKSUM: 400,
  INVALID_INTEGER: 400,
  BAD_SIGNATURE: 401,
  UNAUTHORIZED: 401,
  SESSION_EXPIRED: 401,
  LOGIN_STALE: 401,
  ISSUED_IN_FUTURE: 401,
  SIGNER_NOT_ALLOWED: 403,
  PROVER_MISMATCH: 403,
  NOT_FOUND: 404,
  AUCTION_NOT_FOUND: 404,
  BLOCK_NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  BID_NOT_FOUND: 404,
  PROOF_NOT_FOUND: 404,
  TX_NOT_FOUND: 404,
  BID_SUPERSEDED: 409,
  AUCTION_EXISTS: 409,
  AUCTION_CLOSED: 409,
  LEASE_LOST: 409,
  CAPACITY_EXCEEDED: 409,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  AUTHORIZATION_REPLAYED: 409,
  REFERENCE_REUSED: 409,
  COLLATERAL_ON_CHAIN: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HEADERS_TOO_LARGE: 431,
  FEE_ABOVE_CAP: 422,
  BOND_BELOW_MINIMUM: 422,
  QUOTE_EXPIRED: 422,
  WRONG_BLOCK: 422,
  INSUFFICIENT_COLLATERAL: 422,
  INVALID_PROOF: 422,
  AMOUNT_TOO_LARGE: 422,
  JOB_TYPE_NOT_DECLARED: 422,
  TIER_TOO_LOW: 422,
  REWARD_NOT_FUNDED: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  L1_UNAVAILABLE: 503,
} as const satisfies Record<ErrorCode, number>;

export type ErrorStatus = (typeof errorStatus)[ErrorCode];

export type { ErrorCode };

/** Whether a string is a code of this version of the contract. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(errorStatus, code);
}

/** `{ error: { code, message, requestId } }`, the body of every error answer. */
export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(errorCodes),
      message: z.string(),
      requestId: z.string(),
    }),
  })
  .describe("Error: a stable code, a message for people, the request id");

export type ErrorBody = z.infer<typeof errorBodySchema>;

export function errorBody(code: ErrorCode, message: string, requestId: string): ErrorBody {
  return { error: { code, message, requestId } };
}
