// Unit and property tests of per-block payouts in rewards.ts: weightedWork (accepted proofs into
// weighted work per operator) and blockPayouts (sequencer, submitter and provers pro rata). The
// splits they build on are in rewards-split.test.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  blockPayouts,
  defaultJobWeights,
  type JobWeights,
  splitProRata,
  splitQuoteReward,
  weightedWork,
} from "./rewards.ts";
import { type JobType, jobTypes } from "./tree.ts";

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

describe("weightedWork", () => {
  it("publishes Aztec's proving times as the default weights", () => {
    expect(defaultJobWeights).toEqual({
      base: 445n,
      merge: 100n,
      block_root: 930n,
      single_tx_block_root: 930n,
      empty_block_root: 930n,
    });
    expect(Object.keys(defaultJobWeights).sort()).toEqual([...jobTypes].sort());
  });

  it("sums each operator's accepted proofs with the default weights", () => {
    const work = weightedWork([
      { operator: "0xa", type: "base" },
      { operator: "0xb", type: "block_root" },
      { operator: "0xa", type: "merge" },
      { operator: "0xa", type: "base" },
      { operator: "0xc", type: "single_tx_block_root" },
      { operator: "0xc", type: "empty_block_root" },
    ]);
    expect(sortedEntries(work)).toEqual([
      ["0xa", 990n], // 445 + 100 + 445
      ["0xb", 930n],
      ["0xc", 1860n],
    ]);
  });

  it("uses custom weights when given", () => {
    const weights: JobWeights = {
      base: 1n,
      merge: 10n,
      block_root: 100n,
      single_tx_block_root: 1000n,
      empty_block_root: 10_000n,
    };
    const work = weightedWork(
      [
        { operator: "x", type: "base" },
        { operator: "x", type: "merge" },
        { operator: "x", type: "block_root" },
        { operator: "y", type: "single_tx_block_root" },
        { operator: "y", type: "empty_block_root" },
        { operator: "y", type: "base" },
      ],
      weights,
    );
    expect(sortedEntries(work)).toEqual([
      ["x", 111n],
      ["y", 11_001n],
    ]);
  });

  it("returns an empty map for no proofs and accepts any iterable", () => {
    expect(weightedWork([]).size).toBe(0);
    function* proofs() {
      yield { operator: "z", type: "merge" as const };
      yield { operator: "z", type: "merge" as const };
    }
    expect(sortedEntries(weightedWork(proofs()))).toEqual([["z", 200n]]);
  });

  it("weights a whole 5-tx block: 5 bases, 3 merges, 1 root", () => {
    const types: JobType[] = ["block_root", "merge", "merge", "merge", "base", "base", "base"];
    types.push("base", "base");
    const work = weightedWork(types.map((type) => ({ operator: "solo", type })));
    expect(work.get("solo")).toBe(5n * 445n + 3n * 100n + 930n);
  });
});

describe("blockPayouts by hand", () => {
  it("pays the sequencer, then the provers pro rata by address", () => {
    // prover 333, submitter 0 (omitted), sequencer 667; 333 over 0xa:100, 0xb:445 (W = 545):
    // 61.10 and 271.90 -> floors 61 + 271, the wei goes to 0xb (remainder 490 > 55)
    const payouts = blockPayouts({
      reward: 1000n,
      feeBps: 3333,
      submitterBps: 1,
      sequencer: "0xseq",
      submitter: "0xsub",
      work: new Map([
        ["0xb", 445n],
        ["0xa", 100n],
      ]),
    });
    expect(payouts).toEqual([
      { recipient: "0xseq", role: "sequencer", amount: 667n },
      { recipient: "0xa", role: "prover", amount: 61n },
      { recipient: "0xb", role: "prover", amount: 272n },
    ]);
  });

  it("includes the submitter when its share is positive", () => {
    expect(
      blockPayouts({
        reward: 10_000n,
        feeBps: 2000,
        submitterBps: 100,
        sequencer: "S",
        submitter: "T",
        work: new Map([["P", 7n]]),
      }),
    ).toEqual([
      { recipient: "S", role: "sequencer", amount: 7900n },
      { recipient: "T", role: "submitter", amount: 100n },
      { recipient: "P", role: "prover", amount: 2000n },
    ]);
  });

  it("leaves the prover share with the sequencer when no prover work was recorded", () => {
    const input = {
      reward: 1000n,
      feeBps: 3333,
      submitterBps: 10,
      sequencer: "S",
      submitter: "T",
    };
    const expected = [
      { recipient: "S", role: "sequencer", amount: 999n },
      { recipient: "T", role: "submitter", amount: 1n },
    ];
    expect(blockPayouts({ ...input, work: new Map() })).toEqual(expected);
    expect(blockPayouts({ ...input, work: new Map([["P", 0n]]) })).toEqual(expected);
  });

  it("omits the sequencer when provers and submitter take everything", () => {
    expect(
      blockPayouts({
        reward: 100n,
        feeBps: 9000,
        submitterBps: 1000,
        sequencer: "S",
        submitter: "T",
        work: new Map([
          ["B", 1n],
          ["A", 1n],
        ]),
      }),
    ).toEqual([
      { recipient: "T", role: "submitter", amount: 10n },
      { recipient: "A", role: "prover", amount: 45n },
      { recipient: "B", role: "prover", amount: 45n },
    ]);
  });

  it("omits provers whose rounded share is zero", () => {
    // prover share 1 wei over two equal workers: "A" gets it, "B" gets nothing and is omitted
    expect(
      blockPayouts({
        reward: 10n,
        feeBps: 1000,
        submitterBps: 0,
        sequencer: "S",
        submitter: "T",
        work: new Map([
          ["B", 5n],
          ["A", 5n],
        ]),
      }),
    ).toEqual([
      { recipient: "S", role: "sequencer", amount: 9n },
      { recipient: "A", role: "prover", amount: 1n },
    ]);
  });

  it("returns nothing for a zero reward and propagates range errors", () => {
    const base = { sequencer: "S", submitter: "T", work: new Map([["P", 1n]]) };
    expect(blockPayouts({ ...base, reward: 0n, feeBps: 5000, submitterBps: 10 })).toEqual([]);
    expect(() => blockPayouts({ ...base, reward: -1n, feeBps: 0, submitterBps: 0 })).toThrow(
      RangeError,
    );
    expect(() => blockPayouts({ ...base, reward: 1n, feeBps: 9000, submitterBps: 1001 })).toThrow(
      RangeError,
    );
  });
});

describe("blockPayouts properties", () => {
  const inputArb = fc.record({
    reward: fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 10n ** 30n })),
    bps: fc
      .integer({ min: 0, max: 10_000 })
      .chain((fee) => fc.tuple(fc.constant(fee), fc.integer({ min: 0, max: 10_000 - fee }))),
    work: fc.uniqueArray(
      fc.tuple(
        fc.string({ minLength: 1, maxLength: 3 }).map((s) => `p:${s}`),
        fc.oneof(fc.bigInt({ min: 0n, max: 3n }), fc.bigInt({ min: 0n, max: 10n ** 9n })),
      ),
      { selector: ([id]) => id, maxLength: 8 },
    ),
  });

  it(
    "pays out exactly the reward, in positive amounts, in the documented order",
    () => {
      fc.assert(
        fc.property(inputArb, ({ reward, bps: [feeBps, submitterBps], work }) => {
          const workMap = new Map(work);
          const payouts = blockPayouts({
            reward,
            feeBps,
            submitterBps,
            sequencer: "sequencer",
            submitter: "submitter",
            work: workMap,
          });
          expect(sum(payouts.map((p) => p.amount))).toBe(reward);
          for (const p of payouts) expect(p.amount > 0n, `${p.recipient}: ${p.amount}`).toBe(true);

          const roles = payouts.map((p) => p.role);
          const firstProver = roles.indexOf("prover");
          const head = firstProver === -1 ? roles : roles.slice(0, firstProver);
          const tail = firstProver === -1 ? [] : roles.slice(firstProver);
          expect(tail.every((r) => r === "prover")).toBe(true);
          expect([["sequencer", "submitter"], ["sequencer"], ["submitter"], []]).toContainEqual(
            head,
          );

          const provers = payouts.filter((p) => p.role === "prover").map((p) => p.recipient);
          expect(provers).toEqual([...new Set(provers)].sort((a, b) => (a < b ? -1 : 1)));
          for (const id of provers) expect(workMap.get(id)! > 0n).toBe(true);

          const split = splitQuoteReward(reward, feeBps, submitterBps);
          const amountOf = (role: string) =>
            sum(payouts.filter((p) => p.role === role).map((p) => p.amount));
          const anyWork = work.some(([, w]) => w > 0n);
          expect(amountOf("submitter")).toBe(split.submitter);
          expect(amountOf("prover")).toBe(anyWork ? split.prover : 0n);
          expect(amountOf("sequencer")).toBe(
            anyWork ? split.sequencer : split.sequencer + split.prover,
          );
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    "pays each prover what splitProRata gives it over the prover share",
    () => {
      fc.assert(
        fc.property(inputArb, ({ reward, bps: [feeBps, submitterBps], work }) => {
          const payouts = blockPayouts({
            reward,
            feeBps,
            submitterBps,
            sequencer: "sequencer",
            submitter: "submitter",
            work: new Map(work),
          });
          const proverShare = splitQuoteReward(reward, feeBps, submitterBps).prover;
          const expected = sortedEntries(splitProRata(proverShare, new Map(work))).filter(
            ([, amount]) => amount > 0n,
          );
          expect(
            payouts.filter((p) => p.role === "prover").map((p) => [p.recipient, p.amount]),
          ).toEqual(expected);
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );
});
