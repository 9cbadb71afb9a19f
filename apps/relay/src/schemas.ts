// Wire primitives shared by the endpoint schemas.
import { getAddress, isAddress } from "viem";
import { z } from "zod";

export const address = z
  .string()
  .refine((v) => isAddress(v, { strict: false }), "must be 0x followed by 40 hex digits")
  .transform((v) => getAddress(v));

export const bytes32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, "must be 0x followed by 64 hex digits")
  .transform((v) => v.toLowerCase() as `0x${string}`);

export const signature = z.string().max(200).describe("65-byte signature r || s || v, 0x hex");

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

export const blockNumber = z.number().int().min(0).max(2_147_483_647);

export const bps = z.number().int().min(0).max(10_000);

export const blockParam = z.object({
  blockNumber: z.coerce.number().int().min(0).max(2_147_483_647),
});
