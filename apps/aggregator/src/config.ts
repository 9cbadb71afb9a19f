// The aggregator's settings, mapped once from the environment at start-up (service.ts). The
// reward model is a discriminated union: each model carries exactly the settings it uses, so a
// payout reads its model's settings instead of testing the environment inside the transaction.
import { type AggregatorEnv, ConfigError } from "@prover-boost/config";
import {
  assertBoosterConfig,
  type BoosterConfig,
  type JobWeights,
  type Pricing,
} from "@prover-boost/core";

export type RewardModel =
  /** Aztec's first design: the winner's quoted fee, split by weighted work among the provers. */
  | {
      model: "quote";
      /** The submitter's cut, basis points (capped by what the prover fee leaves). */
      submitterBps: number;
      /** Who submits the proof; undefined = the block's sequencer. */
      submitter: string | undefined;
      jobWeights: JobWeights;
    }
  /** The multi-prover booster: the sequencer's cut, the rest by activity shares. */
  | {
      model: "shares";
      sequencerBps: number;
      booster: BoosterConfig;
      /** Shares count in proportion to each operator's weighted work in the block. */
      jobWeights: JobWeights;
    };

export interface AggregatorConfig {
  /**
   * `ledger`: rewards and bonds are booked in Postgres only. `chain`: every lock, slash and
   * payout also owes the escrow a settlement transaction (settler.ts), and a block's reward is
   * what its sequencer funded into the escrow.
   */
  collateral: "ledger" | "chain";
  /** Time between two ticks of the loop. */
  tickMs: number;
  /** How an auction's winner and fee are picked (close-auctions.ts). */
  auctionPricing: Pricing;
  /** The slot clock: a quote must still be valid in the slot its auction closes in. */
  slots: { slotDurationMs: number; genesisTimeMs: number };
  /** A missed deadline's slashed bond: this share to the sequencer, the rest burned. */
  slashToSequencerBps: number;
  /** Open proving: re-issues of one failed job made at once, then the least time between two. */
  reissues: { max: number; backoffMs: number };
  /** Open proving: how long a block stays open before it expires (0: never; open-proving.ts). */
  openProvingWindowMs: number;
  rewards: RewardModel;
}

export function aggregatorConfigOf(env: AggregatorEnv): AggregatorConfig {
  return {
    collateral: env.COLLATERAL,
    tickMs: env.AGGREGATOR_TICK_MS,
    auctionPricing: env.AUCTION_PRICING,
    slots: { slotDurationMs: env.SLOT_DURATION_MS, genesisTimeMs: env.GENESIS_TIME_MS },
    slashToSequencerBps: env.SLASH_TO_SEQUENCER_BPS,
    reissues: { max: env.MAX_JOB_REISSUES, backoffMs: env.REISSUE_BACKOFF_MS },
    openProvingWindowMs: env.OPEN_PROVING_WINDOW_MS,
    rewards:
      env.REWARD_MODEL === "shares"
        ? {
            model: "shares",
            sequencerBps: env.SEQUENCER_BPS,
            booster: boosterOf(env),
            jobWeights: env.JOB_WEIGHTS,
          }
        : {
            model: "quote",
            submitterBps: env.SUBMITTER_BPS,
            submitter: env.SUBMITTER_ADDRESS,
            jobWeights: env.JOB_WEIGHTS,
          },
  };
}

/**
 * The booster's settings, checked as every payout will check them: a curve the core refuses
 * (BOOSTER_MINIMUM above BOOSTER_K) is refused at start (exit 2), not by every shares payout.
 */
function boosterOf(env: AggregatorEnv): BoosterConfig {
  const booster: BoosterConfig = {
    increment: env.BOOSTER_INCREMENT,
    maxScore: env.BOOSTER_MAX_SCORE,
    a: env.BOOSTER_A,
    k: env.BOOSTER_K,
    minimum: env.BOOSTER_MINIMUM,
    decay: env.BOOSTER_DECAY,
  };
  if (booster.minimum > booster.k) {
    throw new ConfigError(
      `invalid configuration:\n  BOOSTER_MINIMUM (${booster.minimum}) must not exceed BOOSTER_K (${booster.k})`,
    );
  }
  assertBoosterConfig(booster);
  return booster;
}
