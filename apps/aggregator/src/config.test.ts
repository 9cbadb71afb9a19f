// The environment is mapped once into the aggregator's config; the reward model carries exactly
// its own settings.
import { aggregatorEnv, ConfigError, parseEnv } from "@prover-boost/config";
import { defaultJobWeights } from "@prover-boost/core";
import { describe, expect, it } from "vitest";
import { aggregatorConfigOf } from "./config.ts";

const submitter = "0x00000000000000000000000000000000000000aa";

describe("aggregatorConfigOf", () => {
  it("maps the defaults: the quote model with the default job weights", () => {
    const config = aggregatorConfigOf(parseEnv(aggregatorEnv, {}));
    expect(config).toEqual({
      tickMs: 250,
      auctionPricing: "first",
      collateral: "ledger",
      slots: { slotDurationMs: 12_000, genesisTimeMs: 0 },
      slashToSequencerBps: 5000,
      reissues: { max: 3, backoffMs: 60_000 },
      openProvingWindowMs: 86_400_000,
      rewards: {
        model: "quote",
        submitterBps: 0,
        submitter: undefined,
        jobWeights: defaultJobWeights,
      },
    });
  });

  it("maps the quote model's submitter and every loop setting", () => {
    const config = aggregatorConfigOf(
      parseEnv(aggregatorEnv, {
        AGGREGATOR_TICK_MS: "40",
        AUCTION_PRICING: "second",
        SLASH_TO_SEQUENCER_BPS: "2500",
        MAX_JOB_REISSUES: "1",
        REISSUE_BACKOFF_MS: "900",
        OPEN_PROVING_WINDOW_MS: "0",
        SUBMITTER_BPS: "300",
        SUBMITTER_ADDRESS: submitter,
      }),
    );
    expect(config).toMatchObject({
      tickMs: 40,
      auctionPricing: "second",
      slashToSequencerBps: 2500,
      reissues: { max: 1, backoffMs: 900 },
      openProvingWindowMs: 0,
      rewards: {
        model: "quote",
        submitterBps: 300,
        submitter: expect.stringMatching(/^0x0{38}aa$/i),
      },
    });
  });

  it("maps the shares model with its booster settings and work weights, nothing of the quote model", () => {
    const config = aggregatorConfigOf(
      parseEnv(aggregatorEnv, {
        REWARD_MODEL: "shares",
        SEQUENCER_BPS: "1234",
        BOOSTER_INCREMENT: "1",
        BOOSTER_MAX_SCORE: "2",
        BOOSTER_A: "3",
        BOOSTER_K: "5",
        BOOSTER_MINIMUM: "4",
        BOOSTER_DECAY: "6",
        SUBMITTER_BPS: "300",
      }),
    );
    expect(config.rewards).toEqual({
      model: "shares",
      sequencerBps: 1234,
      booster: { increment: 1n, maxScore: 2n, a: 3n, k: 5n, minimum: 4n, decay: 6n },
      jobWeights: defaultJobWeights,
    });
  });

  it("refuses a booster curve every shares payout would refuse (minimum above k), naming both", () => {
    const env = parseEnv(aggregatorEnv, {
      REWARD_MODEL: "shares",
      BOOSTER_K: "1000",
      BOOSTER_MINIMUM: "100000",
    });
    expect(() => aggregatorConfigOf(env)).toThrow(ConfigError);
    expect(() => aggregatorConfigOf(env)).toThrow(
      /BOOSTER_MINIMUM \(100000\) must not exceed BOOSTER_K \(1000\)/,
    );
    // The quote model reads no booster.
    expect(
      aggregatorConfigOf(parseEnv(aggregatorEnv, { BOOSTER_K: "1000", BOOSTER_MINIMUM: "100000" }))
        .rewards.model,
    ).toBe("quote");
  });
});
