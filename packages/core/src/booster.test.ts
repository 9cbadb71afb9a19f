import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ActivityScore,
  activityScoreAt,
  assertBoosterConfig,
  type BoosterConfig,
  boosterShares,
  defaultBoosterConfig,
  updateActivityScore,
} from "./booster.ts";

const RUNS = { numRuns: 2000 };

// Defaults: increment 125000, maxScore 15000000, a 1000, k 1000000, minimum 100000, decay 100000.
// shares(score) = k if score > maxScore, else max(k - a * (maxScore - score)^2 / 1e10, minimum).

describe("boosterShares with the default config (hand-computed)", () => {
  const cases: [score: bigint, shares: bigint, arithmetic: string][] = [
    [15_000_000n, 1_000_000n, "gap 0: 1000000 - 0 = 1000000"],
    [15_000_001n, 1_000_000n, "score > maxScore: k = 1000000"],
    [40_000_000n, 1_000_000n, "score > maxScore: k = 1000000"],
    [14_999_999n, 1_000_000n, "gap 1: 1000*1/1e10 = 0.0000001 -> 0; 1000000 - 0"],
    [14_500_000n, 975_000n, "gap 5e5: 1000*2.5e11/1e10 = 25000; 1000000 - 25000"],
    [14_000_000n, 900_000n, "gap 1e6: 1000*1e12/1e10 = 100000; 1000000 - 100000"],
    [13_000_000n, 600_000n, "gap 2e6: 1000*4e12/1e10 = 400000; 1000000 - 400000"],
    [12_500_000n, 375_000n, "gap 2.5e6: 1000*6.25e12/1e10 = 625000; 1000000 - 625000"],
    [12_000_000n, 100_000n, "gap 3e6: 1000*9e12/1e10 = 900000; 1000000 - 900000 = minimum"],
    [0n, 100_000n, "gap 1.5e7: 1000*2.25e14/1e10 = 22500000; 1000000 - 22500000 < 0 -> minimum"],
    [7_000_000n, 100_000n, "gap 8e6: 1000*6.4e13/1e10 = 6400000 > k -> minimum"],
  ];
  for (const [score, shares, arithmetic] of cases) {
    it(`score ${score} -> ${shares} (${arithmetic})`, () => {
      expect(boosterShares(score, defaultBoosterConfig)).toBe(shares);
    });
  }

  it("truncates the quadratic term (integer division rounds down, never to nearest)", () => {
    // score 13500001: gap = 15000000 - 13500001 = 1499999
    // gap^2 = (1500000 - 1)^2 = 2250000000000 - 3000000 + 1 = 2249997000001
    // 1000 * 2249997000001 = 2249997000001000; / 1e10 = 224999.7000001 -> 224999
    // 1000000 - 224999 = 775001 (rounding to nearest would give 775000)
    expect(boosterShares(13_500_001n)).toBe(775_001n);
    // score 14876543: gap = 123457; 123457^2 = 15129000000 + 112422000 + 208849 = 15241630849
    // 1000 * 15241630849 = 15241630849000; / 1e10 = 1524.1630849 -> 1524; 1000000 - 1524
    expect(boosterShares(14_876_543n)).toBe(998_476n);
  });

  it("floors at minimum exactly around the crossing point", () => {
    // score 11999999: gap 3000001; gap^2 = 9000006000001; *1000/1e10 = 900000.6000001 -> 900000
    // 1000000 - 900000 = 100000 (= minimum, reached by the curve itself)
    expect(boosterShares(11_999_999n)).toBe(100_000n);
    // score 11999998: gap 3000002; gap^2 = 9000012000004; *1000/1e10 = 900001.2000004 -> 900001
    // 1000000 - 900001 = 99999 < minimum -> 100000
    expect(boosterShares(11_999_998n)).toBe(100_000n);
  });

  it("uses the given config, not the defaults", () => {
    const cfg: BoosterConfig = {
      increment: 1n,
      maxScore: 100n,
      a: 10_000_000_000n,
      k: 10_000n,
      minimum: 0n,
      decay: 1n,
    };
    // score 90: gap 10; 1e10 * 100 / 1e10 = 100; 10000 - 100 = 9900
    expect(boosterShares(90n, cfg)).toBe(9_900n);
    // score 0: gap 100; 1e10 * 10000 / 1e10 = 10000; 10000 - 10000 = 0 = minimum
    expect(boosterShares(0n, cfg)).toBe(0n);
    // score 101 > maxScore: k
    expect(boosterShares(101n, cfg)).toBe(10_000n);
  });

  it("rejects a negative score", () => {
    expect(() => boosterShares(-1n)).toThrow(RangeError);
  });
});

describe("assertBoosterConfig", () => {
  it("accepts the defaults and minimum === k", () => {
    expect(() => assertBoosterConfig(defaultBoosterConfig)).not.toThrow();
    expect(() =>
      assertBoosterConfig({ ...defaultBoosterConfig, minimum: 1_000_000n }),
    ).not.toThrow();
    expect(() => assertBoosterConfig({ ...defaultBoosterConfig, decay: 0n, a: 0n })).not.toThrow();
  });

  for (const key of ["increment", "maxScore", "a", "k", "minimum", "decay"] as const) {
    it(`rejects a negative ${key}`, () => {
      expect(() => assertBoosterConfig({ ...defaultBoosterConfig, [key]: -1n })).toThrow(
        RangeError,
      );
    });
  }

  it("rejects minimum > k, and every function checks its config", () => {
    const bad = { ...defaultBoosterConfig, minimum: 1_000_001n };
    expect(() => assertBoosterConfig(bad)).toThrow(RangeError);
    expect(() => boosterShares(0n, bad)).toThrow(RangeError);
    expect(() => activityScoreAt({ value: 0n, epoch: 0n }, 1n, bad)).toThrow(RangeError);
    expect(() => updateActivityScore({ value: 0n, epoch: 0n }, 1n, bad)).toThrow(RangeError);
  });

  it("rejects a non-bigint field", () => {
    const bad = { ...defaultBoosterConfig, k: 5 } as unknown as BoosterConfig;
    expect(() => assertBoosterConfig(bad)).toThrow(RangeError);
  });
});

describe("activityScoreAt (hand-computed, decay 100000 per epoch)", () => {
  const state: ActivityScore = { value: 500_000n, epoch: 4n };

  it("decays by 100000 per epoch since the last update", () => {
    expect(activityScoreAt(state, 4n)).toBe(500_000n); // 0 epochs
    expect(activityScoreAt(state, 5n)).toBe(400_000n); // 500000 - 100000*1
    expect(activityScoreAt(state, 7n)).toBe(200_000n); // 500000 - 100000*3
    expect(activityScoreAt(state, 9n)).toBe(0n); // 500000 - 100000*5 = 0
  });

  it("floors at 0", () => {
    expect(activityScoreAt(state, 10n)).toBe(0n); // 500000 - 600000 < 0
    expect(activityScoreAt(state, 1_000_000n)).toBe(0n);
  });

  it("records nothing", () => {
    activityScoreAt(state, 7n);
    expect(state).toEqual({ value: 500_000n, epoch: 4n });
  });

  it("does not decay with decay 0", () => {
    expect(activityScoreAt(state, 99n, { ...defaultBoosterConfig, decay: 0n })).toBe(500_000n);
  });

  it("rejects an epoch before the state's epoch and a negative state", () => {
    expect(() => activityScoreAt(state, 3n)).toThrow(RangeError);
    expect(() => activityScoreAt({ value: -1n, epoch: 0n }, 0n)).toThrow(RangeError);
  });
});

describe("updateActivityScore (hand-computed, increment 125000, decay 100000)", () => {
  const fresh: ActivityScore = { value: 0n, epoch: 0n };

  it("leaves a fresh state unchanged in epoch 0", () => {
    expect(updateActivityScore(fresh, 0n)).toEqual({ value: 0n, epoch: 0n });
  });

  it("a first proof in epoch 1 scores 125000; a second one in epoch 1 changes nothing", () => {
    // 0 - 100000*1 -> 0 (floor); 0 + 125000 = 125000
    const first = updateActivityScore(fresh, 1n);
    expect(first).toEqual({ value: 125_000n, epoch: 1n });
    expect(updateActivityScore(first, 1n)).toEqual({ value: 125_000n, epoch: 1n });
  });

  it("applies the decay of idle epochs before the increment", () => {
    // last update epoch 4 at 500000; proof in epoch 7: 500000 - 100000*3 = 200000; + 125000
    expect(updateActivityScore({ value: 500_000n, epoch: 4n }, 7n)).toEqual({
      value: 325_000n,
      epoch: 7n,
    });
    // 125000 at epoch 1, proof in epoch 5: 125000 - 400000 -> 0; 0 + 125000 = 125000
    expect(updateActivityScore({ value: 125_000n, epoch: 1n }, 5n)).toEqual({
      value: 125_000n,
      epoch: 5n,
    });
  });

  it("caps at maxScore", () => {
    // 14950000 - 100000 + 125000 = 14975000 (below the cap)
    expect(updateActivityScore({ value: 14_950_000n, epoch: 10n }, 11n).value).toBe(14_975_000n);
    // 15000000 - 100000 + 125000 = 15025000 -> capped at 15000000
    expect(updateActivityScore({ value: 15_000_000n, epoch: 10n }, 11n)).toEqual({
      value: 15_000_000n,
      epoch: 11n,
    });
  });

  it("a proof every epoch from epoch 1 reaches maxScore in epoch 596", () => {
    // epoch 1: 125000; each later epoch nets -100000 + 125000 = +25000
    // epoch n: 125000 + 25000*(n-1); epoch 300: 7600000; epoch 596: 125000 + 14875000 = 15000000
    let s = fresh;
    const seen = new Map<bigint, bigint>();
    for (let e = 1n; e <= 600n; e++) {
      s = updateActivityScore(s, e);
      seen.set(e, s.value);
    }
    expect(seen.get(2n)).toBe(150_000n);
    expect(seen.get(300n)).toBe(7_600_000n);
    expect(seen.get(595n)).toBe(14_975_000n);
    expect(seen.get(596n)).toBe(15_000_000n);
    expect(seen.get(600n)).toBe(15_000_000n); // 15000000 - 100000 + 125000 capped
  });

  it("rejects an epoch before the state's epoch", () => {
    expect(() => updateActivityScore({ value: 0n, epoch: 5n }, 4n)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties, over arbitrary valid configs (and the defaults).
// ---------------------------------------------------------------------------------------------

const configArb: fc.Arbitrary<BoosterConfig> = fc.oneof(
  fc.constant({ ...defaultBoosterConfig }),
  fc
    .record({
      increment: fc.bigInt({ min: 0n, max: 10n ** 9n }),
      maxScore: fc.bigInt({ min: 0n, max: 10n ** 10n }),
      a: fc.bigInt({ min: 0n, max: 10n ** 6n }),
      k: fc.bigInt({ min: 0n, max: 10n ** 12n }),
      minFraction: fc.bigInt({ min: 0n, max: 1000n }),
      decay: fc.bigInt({ min: 0n, max: 10n ** 9n }),
    })
    .map(({ minFraction, ...rest }) => ({ ...rest, minimum: (rest.k * minFraction) / 1000n })),
);

const scoreArb = (cfg: BoosterConfig) =>
  fc.oneof(
    fc.bigInt({ min: 0n, max: cfg.maxScore + 10n }),
    fc.bigInt({ min: 0n, max: 10n ** 12n }),
  );

const stateArb = (cfg: BoosterConfig) =>
  fc.record({
    value: fc.bigInt({ min: 0n, max: cfg.maxScore }),
    epoch: fc.bigInt({ min: 0n, max: 10n ** 6n }),
  });

describe("booster properties", () => {
  it("shares always lie within [minimum, k]", () => {
    fc.assert(
      fc.property(
        configArb.chain((cfg) => fc.tuple(fc.constant(cfg), scoreArb(cfg))),
        ([cfg, score]) => {
          const s = boosterShares(score, cfg);
          expect(s >= cfg.minimum && s <= cfg.k).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it("shares are monotonically non-decreasing in score", () => {
    fc.assert(
      fc.property(
        configArb.chain((cfg) => fc.tuple(fc.constant(cfg), scoreArb(cfg), scoreArb(cfg))),
        ([cfg, x, y]) => {
          const [lo, hi] = x <= y ? [x, y] : [y, x];
          expect(boosterShares(lo, cfg) <= boosterShares(hi, cfg)).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it("above the floor, k - shares is the floor of a*gap^2/1e10 (bracketing check)", () => {
    fc.assert(
      fc.property(
        configArb.chain((cfg) =>
          fc.tuple(fc.constant(cfg), fc.bigInt({ min: 0n, max: cfg.maxScore })),
        ),
        ([cfg, score]) => {
          const s = boosterShares(score, cfg);
          const gap = cfg.maxScore - score;
          const penalty = cfg.k - s; // claimed floor(a*gap^2/1e10) when s > minimum
          const exact = cfg.a * gap * gap;
          if (s > cfg.minimum) {
            expect(penalty * 10n ** 10n <= exact).toBe(true);
            expect(exact < (penalty + 1n) * 10n ** 10n).toBe(true);
          } else {
            // at the floor the curve itself is at or below minimum
            expect(exact >= (cfg.k - cfg.minimum) * 10n ** 10n).toBe(true);
          }
        },
      ),
      RUNS,
    );
  });

  it("updateActivityScore is idempotent within an epoch and never exceeds maxScore", () => {
    fc.assert(
      fc.property(
        configArb.chain((cfg) =>
          fc.tuple(
            fc.constant(cfg),
            stateArb(cfg),
            fc.array(fc.bigInt({ min: 0n, max: 50n }), { maxLength: 20 }),
          ),
        ),
        ([cfg, start, steps]) => {
          let s = start;
          let epoch = start.epoch;
          for (const step of steps) {
            epoch += step;
            const once = updateActivityScore(s, epoch, cfg);
            const twice = updateActivityScore(once, epoch, cfg);
            expect(twice).toEqual(once);
            expect(once.epoch).toBe(epoch);
            expect(once.value >= 0n && once.value <= cfg.maxScore).toBe(true);
            if (step === 0n) expect(once).toEqual(s);
            else {
              // a proof in a new epoch adds at most `increment` over the decayed score
              const before = activityScoreAt(s, epoch, cfg);
              expect(once.value - before <= cfg.increment).toBe(true);
              expect(once.value >= before).toBe(true);
            }
            s = once;
          }
        },
      ),
      RUNS,
    );
  });

  it("activityScoreAt is never negative, non-increasing, and loses exactly `decay` per epoch", () => {
    fc.assert(
      fc.property(
        configArb.chain((cfg) =>
          fc.tuple(
            fc.constant(cfg),
            stateArb(cfg),
            fc.bigInt({ min: 0n, max: 10n ** 6n }),
            fc.bigInt({ min: 0n, max: 10n ** 6n }),
          ),
        ),
        ([cfg, state, d1, d2]) => {
          const [e1, e2] = [state.epoch + d1, state.epoch + d1 + d2];
          const v1 = activityScoreAt(state, e1, cfg);
          const v2 = activityScoreAt(state, e2, cfg);
          expect(v1 >= 0n && v2 >= 0n).toBe(true);
          expect(v1 >= v2).toBe(true);
          expect(v1 <= state.value).toBe(true);
          // one more epoch: either exactly `decay` less, or floored at 0
          const next = activityScoreAt(state, e1 + 1n, cfg);
          expect(next === v1 - cfg.decay || (next === 0n && v1 <= cfg.decay)).toBe(true);
        },
      ),
      RUNS,
    );
  });
});
