// Unit and property tests of the reward splits in rewards.ts: splitQuoteReward (a block reward
// into prover, submitter and sequencer shares by basis points) and splitProRata (an amount over
// weights, leftover wei by largest remainder then smallest id). weightedWork and blockPayouts are
// in rewards-payouts.test.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BPS, splitProRata, splitQuoteReward } from "./rewards.ts";

const RUNS = 2000;
// Property tests are CPU bound: allow them plenty of time so that a slow machine cannot fail them.
const PROPERTY_TIMEOUT = 120_000;

const sortedEntries = (map: ReadonlyMap<string, bigint>): [string, bigint][] =>
  [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

const sum = (values: Iterable<bigint>): bigint => {
  let total = 0n;
  for (const v of values) total += v;
  return total;
};

describe("splitQuoteReward", () => {
  it.each([
    // [reward, feeBps, submitterBps, prover, submitter, sequencer], all worked out by hand.
    [1000n, 3333, 1, 333n, 0n, 667n], // 333.3 -> 333, 0.1 -> 0
    [1001n, 5000, 5000, 500n, 500n, 1n], // 500.5 -> 500 twice; the dust stays with the sequencer
    [9999n, 1, 1, 0n, 0n, 9999n], // 0.9999 -> 0
    [10_000n, 1, 1, 1n, 1n, 9998n],
    [10_000n, 2000, 100, 2000n, 100n, 7900n],
    [0n, 5000, 5000, 0n, 0n, 0n],
    [12_345n, 10_000, 0, 12_345n, 0n, 0n],
    [12_345n, 0, 10_000, 0n, 12_345n, 0n],
    [12_345n, 0, 0, 0n, 0n, 12_345n],
    [7n, 9999, 0, 6n, 0n, 1n], // 6.9993 -> 6
    [10n ** 18n, 250, 25, 25n * 10n ** 15n, 25n * 10n ** 14n, 10n ** 18n - 275n * 10n ** 14n],
  ] as const)("splits %s at fee %i bps, submitter %i bps", (reward, fee, sub, p, s, q) => {
    expect(splitQuoteReward(reward, fee, sub)).toEqual({ prover: p, submitter: s, sequencer: q });
  });

  it.each([
    [-1n, 0, 0],
    [100n, -1, 0],
    [100n, 0, -1],
    [100n, 10_001, 0],
    [100n, 0, 10_001],
    [100n, 5001, 5000],
    [100n, 10_000, 1],
  ] as const)("rejects reward %s, fee %i, submitter %i with RangeError", (reward, fee, sub) => {
    expect(() => splitQuoteReward(reward, fee, sub)).toThrow(RangeError);
  });

  it("exposes BPS as 10000", () => {
    expect(BPS).toBe(10_000n);
  });

  it(
    "always sums exactly, rounds each share down, and never goes negative",
    () => {
      fc.assert(
        fc.property(
          fc.oneof(fc.bigInt({ min: 0n, max: 100_000n }), fc.bigInt({ min: 0n, max: 10n ** 36n })),
          fc
            .integer({ min: 0, max: 10_000 })
            .chain((fee) => fc.tuple(fc.constant(fee), fc.integer({ min: 0, max: 10_000 - fee }))),
          (reward, [fee, sub]) => {
            const split = splitQuoteReward(reward, fee, sub);
            expect(split.prover + split.submitter + split.sequencer).toBe(reward);
            // floor: share * 1e4 <= reward * bps < (share + 1) * 1e4
            expect(split.prover * 10_000n <= reward * BigInt(fee)).toBe(true);
            expect(reward * BigInt(fee) < (split.prover + 1n) * 10_000n).toBe(true);
            expect(split.submitter * 10_000n <= reward * BigInt(sub)).toBe(true);
            expect(reward * BigInt(sub) < (split.submitter + 1n) * 10_000n).toBe(true);
            expect(split.prover >= 0n && split.submitter >= 0n && split.sequencer >= 0n).toBe(true);
            // The sequencer gets at least its nominal share (it keeps the rounding dust).
            expect(split.sequencer * 10_000n >= reward * BigInt(10_000 - fee - sub)).toBe(true);
          },
        ),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );
});

describe("splitProRata by hand", () => {
  it("gives a three-way tie's leftover wei to the smallest id", () => {
    // floors 3, 3, 3; one wei left; equal remainders -> "a"
    const weights = new Map([
      ["c", 1n],
      ["b", 1n],
      ["a", 1n],
    ]);
    expect(sortedEntries(splitProRata(10n, weights))).toEqual([
      ["a", 4n],
      ["b", 3n],
      ["c", 3n],
    ]);
  });

  it("gives two leftover wei to the two smallest ids on a tie", () => {
    const weights = new Map([
      ["d", 1n],
      ["b", 1n],
      ["c", 1n],
      ["a", 1n],
    ]);
    // 14 / 4 = 3.5 each: floors 12, two wei left -> a and b
    expect(sortedEntries(splitProRata(14n, weights))).toEqual([
      ["a", 4n],
      ["b", 4n],
      ["c", 3n],
      ["d", 3n],
    ]);
  });

  it("prefers the larger remainder over the smaller id", () => {
    // 10 * 1/3 = 3.33, 10 * 2/3 = 6.67: floors 3 + 6, the wei goes to "b" (remainder 2 of 3)
    expect(
      sortedEntries(
        splitProRata(
          10n,
          new Map([
            ["a", 1n],
            ["b", 2n],
          ]),
        ),
      ),
    ).toEqual([
      ["a", 3n],
      ["b", 7n],
    ]);
    // 100 over 1:2:4 = 14.29, 28.57, 57.14: floors 99, remainders 2, 4, 1 (of 7) -> "y"
    expect(
      sortedEntries(
        splitProRata(
          100n,
          new Map([
            ["x", 1n],
            ["y", 2n],
            ["z", 4n],
          ]),
        ),
      ),
    ).toEqual([
      ["x", 14n],
      ["y", 29n],
      ["z", 57n],
    ]);
  });

  it("gives nothing extra when the split is exact", () => {
    const weights = new Map([
      ["a", 3n],
      ["b", 3n],
      ["c", 1n],
    ]);
    expect(sortedEntries(splitProRata(70n, weights))).toEqual([
      ["a", 30n],
      ["b", 30n],
      ["c", 10n],
    ]);
  });

  it("lets a small recipient end with nothing when there is too little to go around", () => {
    const parts = splitProRata(
      2n,
      new Map([
        ["c", 1n],
        ["b", 1n],
        ["a", 1n],
      ]),
    );
    expect(parts.get("a")).toBe(1n);
    expect(parts.get("b")).toBe(1n);
    expect(parts.get("c") ?? 0n).toBe(0n);
  });

  it("splits with huge weights exactly", () => {
    const w = 10n ** 30n;
    const parts = splitProRata(
      5n,
      new Map([
        ["a", w],
        ["b", w + 1n],
      ]),
    );
    // 5 * w / (2w + 1) = 2.4999.., 5 * (w + 1) / (2w + 1) = 2.5000..: "b" has the larger remainder
    expect(sortedEntries(parts)).toEqual([
      ["a", 2n],
      ["b", 3n],
    ]);
  });

  it("omits zero weights", () => {
    const parts = splitProRata(
      9n,
      new Map([
        ["a", 0n],
        ["b", 2n],
        ["c", 0n],
        ["d", 1n],
      ]),
    );
    expect(sortedEntries(parts)).toEqual([
      ["b", 6n],
      ["d", 3n],
    ]);
    expect(parts.has("a")).toBe(false);
    expect(parts.has("c")).toBe(false);
  });

  it("returns an empty map for no weights or only zero weights", () => {
    expect(splitProRata(100n, new Map()).size).toBe(0);
    expect(
      splitProRata(
        100n,
        new Map([
          ["a", 0n],
          ["b", 0n],
        ]),
      ).size,
    ).toBe(0);
  });

  it("hands out zero when the total is zero", () => {
    const parts = splitProRata(0n, new Map([["a", 5n]]));
    expect(parts.get("a") ?? 0n).toBe(0n);
    expect(sum(parts.values())).toBe(0n);
  });

  it("rejects a negative total or a negative weight", () => {
    expect(() => splitProRata(-1n, new Map([["a", 1n]]))).toThrow(RangeError);
    expect(() =>
      splitProRata(
        10n,
        new Map([
          ["a", 1n],
          ["b", -1n],
        ]),
      ),
    ).toThrow(RangeError);
  });

  it("does not modify its input", () => {
    const weights = new Map([
      ["b", 1n],
      ["a", 2n],
    ]);
    splitProRata(10n, weights);
    expect([...weights]).toEqual([
      ["b", 1n],
      ["a", 2n],
    ]);
  });
});

// Weighted inputs: unique ids, weights from a tiny range (many ties) or a huge one.
const idArb = fc.string({ minLength: 1, maxLength: 4 });
const weightArb = fc.oneof(
  fc.bigInt({ min: 0n, max: 4n }),
  fc.bigInt({ min: 0n, max: 1000n }),
  fc.bigInt({ min: 0n, max: 10n ** 24n }),
);
const entriesArb = fc.uniqueArray(fc.tuple(idArb, weightArb), {
  selector: ([id]) => id,
  minLength: 0,
  maxLength: 12,
});
const totalArb = fc.oneof(
  fc.bigInt({ min: 0n, max: 50n }),
  fc.bigInt({ min: 0n, max: 10n ** 30n }),
);

describe("splitProRata properties", () => {
  it(
    "parts sum exactly to the total over exactly the positive-weight ids",
    () => {
      fc.assert(
        fc.property(totalArb, entriesArb, (total, entries) => {
          const parts = splitProRata(total, new Map(entries));
          const positive = entries.filter(([, w]) => w > 0n).map(([id]) => id);
          expect([...parts.keys()].sort()).toEqual([...positive].sort());
          if (positive.length === 0) expect(parts.size).toBe(0);
          else expect(sum(parts.values())).toBe(total);
          for (const v of parts.values()) expect(v >= 0n).toBe(true);
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    "keeps every part strictly within 1 wei of its exact proportional share",
    () => {
      fc.assert(
        fc.property(totalArb, entriesArb, (total, entries) => {
          const weights = new Map(entries);
          const parts = splitProRata(total, weights);
          const weightSum = sum(weights.values());
          for (const [id, part] of parts) {
            // |part - total * w / W| < 1  <=>  -W < part * W - total * w < W
            const diff = part * weightSum - total * weights.get(id)!;
            expect(
              diff > -weightSum && diff < weightSum,
              `${id}: diff ${diff} / ${weightSum}`,
            ).toBe(true);
          }
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    "rounds up only the largest remainders, ties to the smaller id",
    () => {
      fc.assert(
        fc.property(totalArb, entriesArb, (total, entries) => {
          const weights = new Map(entries);
          const parts = splitProRata(total, weights);
          const weightSum = sum(weights.values());
          const info = [...parts].map(([id, part]) => {
            const exact = total * weights.get(id)!;
            return { id, rem: exact % weightSum, roundedUp: part * weightSum > exact };
          });
          for (const up of info.filter((i) => i.roundedUp)) {
            expect(up.rem > 0n).toBe(true);
            for (const down of info.filter((i) => !i.roundedUp)) {
              const beats = up.rem > down.rem || (up.rem === down.rem && up.id < down.id);
              expect(
                beats,
                `${up.id} (rem ${up.rem}) rounded up over ${down.id} (rem ${down.rem})`,
              ).toBe(true);
            }
          }
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    "does not depend on the Map's insertion order",
    () => {
      const arb = entriesArb.chain((entries) =>
        fc.tuple(
          fc.constant(entries),
          fc.shuffledSubarray(entries, { minLength: entries.length, maxLength: entries.length }),
        ),
      );
      fc.assert(
        fc.property(totalArb, arb, (total, [entries, shuffled]) => {
          const a = splitProRata(total, new Map(entries));
          const b = splitProRata(total, new Map(shuffled));
          const c = splitProRata(total, new Map([...entries].reverse()));
          expect(sortedEntries(b)).toEqual(sortedEntries(a));
          expect(sortedEntries(c)).toEqual(sortedEntries(a));
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    "scales: multiplying every weight by k changes nothing",
    () => {
      fc.assert(
        fc.property(
          totalArb,
          entriesArb,
          fc.bigInt({ min: 2n, max: 10n ** 6n }),
          (total, entries, k) => {
            const a = splitProRata(total, new Map(entries));
            const b = splitProRata(total, new Map(entries.map(([id, w]) => [id, w * k] as const)));
            expect(sortedEntries(b)).toEqual(sortedEntries(a));
          },
        ),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );
});
