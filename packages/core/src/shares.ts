// Aztec's multi-prover reward model: the sequencer takes a fixed cut in basis points, the rest
// (the prover pool) is split pro rata by the provers' shares (see booster.ts) with the
// largest-remainder rule of splitProRata. With no shares the pool stays with the sequencer.
// The parts always sum exactly to the reward.
import { BPS, type Payout, splitProRata } from "./rewards.ts";

export interface SharesRewardInput {
  reward: bigint;
  /** Sequencer's cut in basis points, an integer in 0..10000. */
  sequencerBps: number;
  sequencer: string;
  /** Shares per prover address; zero shares receive nothing. */
  shares: ReadonlyMap<string, bigint>;
}

export interface SharesSplit {
  sequencer: bigint;
  /** One entry per prover with positive shares, by address ascending. */
  provers: Map<string, bigint>;
}

const byAddress = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function splitSharesReward(input: SharesRewardInput): SharesSplit {
  const { reward, sequencerBps } = input;
  if (reward < 0n) throw new RangeError("reward must be non-negative");
  if (!Number.isInteger(sequencerBps) || sequencerBps < 0 || sequencerBps > 10_000) {
    throw new RangeError("sequencerBps must be an integer within 0..10000");
  }
  const cut = (reward * BigInt(sequencerBps)) / BPS;
  const pool = reward - cut;
  const parts = splitProRata(pool, input.shares);
  const paid = [...parts.values()].reduce((sum, v) => sum + v, 0n);
  const provers = new Map([...parts].sort(([a], [b]) => byAddress(a, b)));
  return { sequencer: cut + pool - paid, provers };
}

/** The same split as payout rows: sequencer first, then provers by address; zeros omitted. */
export function sharesPayouts(input: SharesRewardInput): Payout[] {
  const split = splitSharesReward(input);
  const rows: Payout[] = [
    { recipient: input.sequencer, role: "sequencer", amount: split.sequencer },
    ...[...split.provers].map(([recipient, amount]) => ({
      recipient,
      role: "prover" as const,
      amount,
    })),
  ];
  return rows.filter((p) => p.amount > 0n);
}

/**
 * Each operator's weight in a block's prover pool under the shares model: its booster shares
 * times the weighted work it delivered in that block (see weightedWork: each accepted proof
 * counts its job type's weight). Shares alone would pay an operator with one accepted base
 * proof as much as the root's prover; weighting by work pays for the work done, while the
 * shares still reward a steady record. Operators without work in the block get nothing.
 */
export function workWeightedShares(
  shares: ReadonlyMap<string, bigint>,
  work: ReadonlyMap<string, bigint>,
): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const [operator, s] of shares) {
    if (s < 0n) throw new RangeError("shares must be non-negative");
    const w = work.get(operator) ?? 0n;
    if (w < 0n) throw new RangeError("work must be non-negative");
    if (s * w > 0n) out.set(operator, s * w);
  }
  return out;
}

/**
 * The operators whose activity a paid block records under the shares model: those whose work in
 * it weighs something (JOB_WEIGHTS may weigh a job type 0), sorted, so every payout locks their
 * activity rows in the same order. Proofs that earn nothing of the block earn no score either.
 */
export function activeProvers(work: ReadonlyMap<string, bigint>): string[] {
  return [...work]
    .filter(([, w]) => w > 0n)
    .map(([operator]) => operator)
    .sort();
}
