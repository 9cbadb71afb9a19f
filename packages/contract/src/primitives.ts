// Wire primitives shared by the request and response schemas. Requests parse into typed values
// (checksummed addresses, lower-case hashes, bigint amounts); responses describe the JSON as it
// is sent (uint256 amounts as decimal strings, small integers as numbers).
import { readAddress } from "@prover-boost/core";
import { z } from "zod";

/** Largest Postgres int4: block numbers and every other int4 column or filter. */
export const INT4_MAX = 2_147_483_647;

/**
 * The stable error code a primitive's validation issue carries (in the issue's `params`), so a
 * relay can answer with it instead of the generic VALIDATION_FAILED.
 */
export type InputErrorCode = "BAD_ADDRESS_CHECKSUM" | "INVALID_INTEGER";

const issueWith = (
  ctx: { issues: unknown[] },
  input: unknown,
  message: string,
  code?: InputErrorCode,
) => {
  (ctx.issues as z.core.$ZodRawIssue[]).push({
    code: "custom",
    input,
    message,
    ...(code ? { params: { code } } : {}),
  });
};

/** The stable code of the first validation issue that carries one (see InputErrorCode). */
export function inputErrorCode(issues: readonly unknown[]): InputErrorCode | null {
  for (const issue of issues) {
    const params = (issue as { params?: { code?: unknown; params?: { code?: unknown } } }).params;
    // A zod issue keeps it in `params`; fastify's validation entry one level deeper.
    const code = params?.code ?? params?.params?.code;
    if (code === "BAD_ADDRESS_CHECKSUM" || code === "INVALID_INTEGER") return code;
  }
  return null;
}

/**
 * An address: `0x` and 40 hex digits, returned checksummed. All-lowercase and all-uppercase hex
 * carry no checksum and are accepted; mixed case is an EIP-55 checksum and must be right
 * (BAD_ADDRESS_CHECKSUM otherwise), so a mistyped address is caught rather than used.
 */
export const address = z
  .string()
  .transform((v, ctx) => {
    const read = readAddress(v);
    if (read.ok) return read.address;
    if (read.problem === "checksum") {
      issueWith(
        ctx,
        v,
        "mixed-case address with a wrong EIP-55 checksum (send it checksummed, or all in one case)",
        "BAD_ADDRESS_CHECKSUM",
      );
    } else {
      issueWith(ctx, v, "must be 0x followed by 40 hex digits");
    }
    return z.NEVER;
  })
  .describe("0x + 40 hex digits: EIP-55 checksummed, or all lowercase, or all uppercase");

export const bytes32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, "must be 0x followed by 64 hex digits")
  .transform((v) => v.toLowerCase() as `0x${string}`);

export const signature = z.string().max(200).describe("65-byte signature r || s || v, 0x hex");

/** Arbitrary data as even-length 0x hex (a transaction's data), at most 128 KiB. */
export const hexData = z
  .string()
  .max(262_146)
  .regex(/^0x([0-9a-fA-F]{2})*$/, "must be 0x hex with whole bytes")
  .transform((v) => v.toLowerCase() as `0x${string}`);

export const hexProof = z
  .string()
  .max(262_144)
  .regex(/^0x([0-9a-fA-F]{2})+$/, "must be 0x hex");

/** A uint256 in canonical decimal, parsed; or null (and an INVALID_INTEGER issue) if it is not. */
function uint256Text(v: string, ctx: z.RefinementCtx): bigint | null {
  if (v.length <= 78 && /^(0|[1-9][0-9]*)$/.test(v) && BigInt(v) < 2n ** 256n) return BigInt(v);
  issueWith(
    ctx,
    v,
    "must be a uint256 in canonical decimal (digits only, no sign, no leading zeros)",
    "INVALID_INTEGER",
  );
  return null;
}

/** uint256 amount as a canonical decimal string (INVALID_INTEGER otherwise), parsed to a bigint. */
export const uintString = z
  .string()
  .transform((v, ctx) => uint256Text(v, ctx) ?? z.NEVER)
  .describe("uint256 as a decimal string");

/**
 * A uint256 that is usually small (a quote's validUntilSlot): a JSON number (a safe integer) or a
 * canonical decimal string up to 2^256 - 1, parsed to a bigint. Anything else is INVALID_INTEGER.
 */
export const uint256Int = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    if (typeof v === "number") {
      if (Number.isSafeInteger(v) && v >= 0) return BigInt(v);
      issueWith(ctx, v, "must be a safe integer from 0 as a JSON number", "INVALID_INTEGER");
      return z.NEVER;
    }
    return uint256Text(v, ctx) ?? z.NEVER;
  })
  .describe("uint256: a JSON number (a safe integer) or a canonical decimal string");

/** Canonical decimal: no sign, no leading zeros, no spaces, exponent, fraction or hex. */
const canonicalDecimal = /^(0|[1-9][0-9]*)$/;

/** Checks a canonical decimal string or a safe JSON integer against 0..max; null when fine. */
function uintProblem(v: unknown, max: number, numbers: boolean): string | null {
  const range = `an integer from 0 to ${max}`;
  if (typeof v === "number") {
    if (!numbers) return `must be ${range} as a decimal string`;
    return Number.isSafeInteger(v) && v >= 0 && v <= max ? null : `must be ${range}`;
  }
  if (typeof v !== "string" || v.length > 16 || !canonicalDecimal.test(v)) {
    return `must be ${range}, in canonical decimal (digits only, no sign, no leading zeros)`;
  }
  return Number(v) <= max ? null : `must be ${range}`;
}

/**
 * A small unsigned integer (block numbers, slots, counts, unix ms times) from a JSON number (a
 * safe integer) or a canonical decimal string, parsed to a number from 0 to `max`. Anything else
 * is INVALID_INTEGER.
 */
export const uint = (max: number = Number.MAX_SAFE_INTEGER) =>
  z
    .union([z.number(), z.string()])
    .transform((v, ctx) => {
      const problem = uintProblem(v, max, true);
      if (problem) {
        issueWith(ctx, v, problem, "INVALID_INTEGER");
        return z.NEVER;
      }
      return Number(v) + 0; // + 0 folds -0 into 0
    })
    .describe(`integer 0..${max}: a JSON number or a canonical decimal string`);

/**
 * An integer in a path or query string: canonical decimal only (`%20`, `0x10`, `1e3`, `+1`,
 * `01`, `-1` are INVALID_INTEGER, never coerced), from `min` to `max`.
 */
export const uintText = (max: number, min = 0) =>
  z
    .string()
    .transform((v, ctx) => {
      const problem =
        uintProblem(v, max, false) ?? (Number(v) < min ? `must be at least ${min}` : null);
      if (problem) {
        issueWith(ctx, v, problem, "INVALID_INTEGER");
        return z.NEVER;
      }
      return Number(v);
    })
    .describe(`integer ${min}..${max} in canonical decimal`);

/** Small non-negative integer: a JSON number or a canonical decimal string (slots, unix ms). */
export const smallInt = uint();

export const blockNumber = uint(INT4_MAX);

/** A block number in a path or query string. */
export const blockNumberText = uintText(INT4_MAX);

/** Basis points where a cap is the field's own rule (an auction's maxFeeBps): 0..10000. */
export const bps = z.number().int().min(0).max(10_000);

/**
 * A uint32 JSON number: a quote's basisPointFee, as EpochProofQuote signs it. Any uint32 is a
 * well-formed quote; a fee above the auction's cap is the auction's refusal (422 FEE_ABOVE_CAP).
 */
export const uint32 = z.number().int().min(0).max(0xffff_ffff);

export const blockParam = z.object({ blockNumber: blockNumberText });

// ---- Response-side primitives: the JSON as sent, no transforms. ----

/** 0x-prefixed hex as sent (addresses, hashes, signatures, proofs). */
export const hexOut = z.templateLiteral(["0x", z.string()]).check(z.regex(/^0x[0-9a-fA-F]*$/));

/** A wei amount (uint256 or a signed ledger amount) as a decimal string. */
export const weiOut = z.string().regex(/^-?\d+$/, "a decimal string");

/** Unix milliseconds or another small integer sent as a JSON number. */
export const intOut = z.number().int();

/**
 * A uint256 that is usually small (a quote's validUntilSlot): a JSON number up to 2^53 - 1, a
 * decimal string above (a JSON number would lose digits, and the signature is over all of them).
 */
export const uint256IntOut = z.union([intOut, z.string().regex(/^\d+$/, "a decimal string")]);

/** The wire form of uint256IntOut. */
export const uint256IntJson = (v: bigint): number | string =>
  v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
