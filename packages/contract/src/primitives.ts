// Wire primitives shared by the request and response schemas. Requests parse into typed values
// (checksummed addresses, lower-case hashes, bigint amounts); responses describe the JSON as it
// is sent (uint256 amounts as decimal strings, small integers as numbers).
import { getAddress, isAddress } from "viem";
import { z } from "zod";

/** Largest Postgres int4: block numbers and every other int4 column or filter. */
export const INT4_MAX = 2_147_483_647;

export const address = z
  .string()
  .refine((v) => isAddress(v, { strict: false }), "must be 0x followed by 40 hex digits")
  .transform((v) => getAddress(v));

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

/** uint256 amount as a decimal string. */
export const uintString = z
  .string()
  .regex(/^(0|[1-9]\d{0,77})$/, "must be a decimal string without sign or leading zeros")
  .transform((v) => BigInt(v))
  .refine((v) => v < 2n ** 256n, "must fit in uint256");

/** Small non-negative integer as a JSON number (block numbers, slots, counts). */
export const smallInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const blockNumber = z.number().int().min(0).max(INT4_MAX);

/** A block number in a path or query string. */
export const blockNumberText = z.coerce.number().int().min(0).max(INT4_MAX);

export const bps = z.number().int().min(0).max(10_000);

export const blockParam = z.object({ blockNumber: blockNumberText });

// ---- Response-side primitives: the JSON as sent, no transforms. ----

/** 0x-prefixed hex as sent (addresses, hashes, signatures, proofs). */
export const hexOut = z.templateLiteral(["0x", z.string()]).check(z.regex(/^0x[0-9a-fA-F]*$/));

/** A wei amount (uint256 or a signed ledger amount) as a decimal string. */
export const weiOut = z.string().regex(/^-?\d+$/, "a decimal string");

/** Unix milliseconds or another small integer sent as a JSON number. */
export const intOut = z.number().int();
