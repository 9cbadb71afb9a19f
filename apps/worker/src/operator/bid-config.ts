// The bidding agent's config file (JSON). Amounts are wei as decimal strings.
//   { "feeFloorWeiPerWeight": "1000000000", "maxBond": "100000000000000000000", "capacity": 2,
//     "jobWeights": { "base": "445" }, "pollMs": 2000 }
import { readFileSync } from "node:fs";
import { defaultJobWeights, type JobWeights } from "@prover-boost/core";
import { z } from "zod";
import { UsageError } from "../cli-options.ts";
import type { BidPolicy } from "./pricing.ts";

const wei = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,77})$/, "a wei amount as a decimal string")
  .transform((s) => BigInt(s));

export const bidConfigSchema = z.strictObject({
  feeFloorWeiPerWeight: wei,
  maxBond: wei,
  capacity: z.number().int().min(1).max(10_000),
  jobWeights: z
    .strictObject({
      base: wei.optional(),
      merge: wei.optional(),
      block_root: wei.optional(),
      single_tx_block_root: wei.optional(),
      empty_block_root: wei.optional(),
    })
    .optional(),
  /** How often to look for open auctions, ms. */
  pollMs: z.number().int().min(100).max(600_000).default(2000),
});

export interface BidConfig extends BidPolicy {
  pollMs: number;
}

export function parseBidConfig(raw: unknown): BidConfig {
  const r = bidConfigSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new UsageError(`bid config: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const weights: JobWeights = { ...defaultJobWeights };
  for (const [type, w] of Object.entries(r.data.jobWeights ?? {})) {
    if (w !== undefined) weights[type as keyof JobWeights] = w;
  }
  return {
    feeFloorWeiPerWeight: r.data.feeFloorWeiPerWeight,
    maxBond: r.data.maxBond,
    capacity: r.data.capacity,
    jobWeights: weights,
    pollMs: r.data.pollMs,
  };
}

export function readBidConfig(path: string): BidConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read bid config ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`bid config ${path} is not JSON: ${(err as Error).message}`);
  }
  return parseBidConfig(raw);
}
