// Reward splitting in integer wei. Every split is exact: the parts always sum to the whole.
// Pro-rata splits use the largest-remainder rule: each recipient first gets
// floor(total * weight / totalWeight); the wei left over go one each to the recipients with the
// largest fractional remainders, ties broken by recipient id in ascending order.
import type { JobType } from "./tree.ts";

export const BPS = 10_000n;

export interface QuoteSplit {
  prover: bigint;
  submitter: bigint;
  sequencer: bigint;
}

/** Aztec's quote model: prover floor(R*fee/1e4), submitter floor(R*sub/1e4), sequencer the rest. */
export function splitQuoteReward(reward: bigint, feeBps: number, submitterBps: number): QuoteSplit {
  if (reward < 0n) throw new RangeError("reward must be non-negative");
  if (feeBps < 0 || submitterBps < 0 || feeBps + submitterBps > 10_000) {
    throw new RangeError("feeBps + submitterBps must lie within 0..10000");
  }
  const prover = (reward * BigInt(feeBps)) / BPS;
  const submitter = (reward * BigInt(submitterBps)) / BPS;
  return { prover, submitter, sequencer: reward - prover - submitter };
}

/** Splits `total` pro rata by integer weights, exactly (largest remainder, ties by id). */
export function splitProRata(
  total: bigint,
  weights: ReadonlyMap<string, bigint>,
): Map<string, bigint> {
  if (total < 0n) throw new RangeError("total must be non-negative");
  const entries = [...weights].filter(([, w]) => {
    if (w < 0n) throw new RangeError("weights must be non-negative");
    return w > 0n;
  });
  const result = new Map<string, bigint>();
  const weightSum = entries.reduce((sum, [, w]) => sum + w, 0n);
  if (weightSum === 0n) return result;
  let assigned = 0n;
  const remainders: { id: string; rem: bigint }[] = [];
  for (const [id, w] of entries) {
    const exact = total * w;
    result.set(id, exact / weightSum);
    assigned += exact / weightSum;
    remainders.push({ id, rem: exact % weightSum });
  }
  remainders.sort((a, b) => (a.rem !== b.rem ? (a.rem > b.rem ? -1 : 1) : a.id < b.id ? -1 : 1));
  let left = total - assigned;
  for (const { id } of remainders) {
    if (left === 0n) break;
    result.set(id, result.get(id)! + 1n);
    left -= 1n;
  }
  return result;
}

export type JobWeights = Record<JobType, bigint>;

/** Default weights: Aztec's published proving times per job type, in ms (base 445, merge 100, root 930). */
export const defaultJobWeights: JobWeights = {
  base: 445n,
  merge: 100n,
  block_root: 930n,
  single_tx_block_root: 930n,
  empty_block_root: 930n,
};

/** Sums the weighted work each operator delivered from its accepted proofs. */
export function weightedWork(
  proofs: Iterable<{ operator: string; type: JobType }>,
  weights: JobWeights = defaultJobWeights,
): Map<string, bigint> {
  const work = new Map<string, bigint>();
  for (const p of proofs) work.set(p.operator, (work.get(p.operator) ?? 0n) + weights[p.type]);
  return work;
}

export interface Payout {
  recipient: string;
  role: "sequencer" | "prover" | "submitter";
  amount: bigint;
}

/**
 * The whole payout of a proven block under the quote model. The prover share goes to the
 * operators whose workers produced accepted proofs, pro rata by weighted work. With no prover
 * work recorded the prover share stays with the sequencer (nobody to pay). Zero amounts are
 * omitted. Output order: sequencer, submitter, then provers by address.
 */
export function blockPayouts(input: {
  reward: bigint;
  feeBps: number;
  submitterBps: number;
  sequencer: string;
  submitter: string;
  work: ReadonlyMap<string, bigint>;
}): Payout[] {
  const split = splitQuoteReward(input.reward, input.feeBps, input.submitterBps);
  const proverParts = splitProRata(split.prover, input.work);
  const paidToProvers = [...proverParts.values()].reduce((a, b) => a + b, 0n);
  const parts: Payout[] = [
    {
      recipient: input.sequencer,
      role: "sequencer",
      amount: split.sequencer + split.prover - paidToProvers,
    },
    { recipient: input.submitter, role: "submitter", amount: split.submitter },
    ...[...proverParts]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([recipient, amount]) => ({ recipient, role: "prover" as const, amount })),
  ];
  return parts.filter((p) => p.amount > 0n);
}
