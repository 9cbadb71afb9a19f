import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { boosterShares } from "./booster.ts";
import { activeProvers, sharesPayouts, splitSharesReward } from "./shares.ts";

const RUNS = { numRuns: 2000 };
const SEQ = "0x5e00";

const split = (reward: bigint, sequencerBps: number, shares: [string, bigint][]) =>
  splitSharesReward({ reward, sequencerBps, sequencer: SEQ, shares: new Map(shares) });

describe("splitSharesReward (hand-computed)", () => {
  it("sequencer cut, then the pool pro rata by shares", () => {
    // sequencer floor(1000*2500/10000) = 250; pool 750; a 750*1/3 = 250, b 750*2/3 = 500
    const r = split(1000n, 2500, [
      ["a", 1n],
      ["b", 2n],
    ]);
    expect(r.sequencer).toBe(250n);
    expect([...r.provers]).toEqual([
      ["a", 250n],
      ["b", 500n],
    ]);
  });

  it("equal remainders: the extra wei goes to the lowest address", () => {
    // bps 0: pool 1000; 1000/3 = 333 rem 1 each (3*333 = 999), 1 wei left -> tie -> 0x0a
    const r = split(1000n, 0, [
      ["0x0c", 1n],
      ["0x0a", 1n],
      ["0x0b", 1n],
    ]);
    expect(r.sequencer).toBe(0n);
    expect([...r.provers]).toEqual([
      ["0x0a", 334n],
      ["0x0b", 333n],
      ["0x0c", 333n],
    ]);
  });

  it("the largest remainder wins over the lower address", () => {
    // pool 10; 0x01: 10*1/3 = 3 rem 1; 0x02: 10*2/3 = 6 rem 2; 1 wei left -> 0x02 (rem 2 > 1)
    const r = split(10n, 0, [
      ["0x01", 1n],
      ["0x02", 2n],
    ]);
    expect([...r.provers]).toEqual([
      ["0x01", 3n],
      ["0x02", 7n],
    ]);
  });

  it("sequencer cut with a truncation and a leftover wei", () => {
    // sequencer floor(1001*1000/10000) = floor(100.1) = 100; pool 901; total shares 10
    // x: 901*3 = 2703 -> 270 rem 3; y: 901*5 = 4505 -> 450 rem 5; z: 901*2 = 1802 -> 180 rem 2
    // 270+450+180 = 900; 1 wei left -> largest remainder y -> 451; 100+270+451+180 = 1001
    const r = split(1001n, 1000, [
      ["x", 3n],
      ["y", 5n],
      ["z", 2n],
    ]);
    expect(r.sequencer).toBe(100n);
    expect(Object.fromEntries(r.provers)).toEqual({ x: 270n, y: 451n, z: 180n });
  });

  it("booster shares feed the split", () => {
    // scores 15000000 / 14000000 / 0 -> shares 1000000 / 900000 / 100000 (sum 2000000)
    // reward 1e18, bps 1000: sequencer 1e17, pool 9e17
    // p1 9e17*1000000/2000000 = 4.5e17; p2 9e17*900000/2000000 = 4.05e17; p3 4.5e16
    const shares = new Map([
      ["0x01", boosterShares(15_000_000n)],
      ["0x02", boosterShares(14_000_000n)],
      ["0x03", boosterShares(0n)],
    ]);
    const r = splitSharesReward({ reward: 10n ** 18n, sequencerBps: 1000, sequencer: SEQ, shares });
    expect(r.sequencer).toBe(100_000_000_000_000_000n);
    expect(Object.fromEntries(r.provers)).toEqual({
      "0x01": 450_000_000_000_000_000n,
      "0x02": 405_000_000_000_000_000n,
      "0x03": 45_000_000_000_000_000n,
    });
  });

  it("no shares (empty or all zero): the pool stays with the sequencer", () => {
    const empty = split(1000n, 2500, []);
    expect(empty.sequencer).toBe(1000n);
    expect(empty.provers.size).toBe(0);
    const zeros = split(1000n, 2500, [
      ["a", 0n],
      ["b", 0n],
    ]);
    expect(zeros.sequencer).toBe(1000n);
    expect(zeros.provers.size).toBe(0);
  });

  it("a prover with zero shares gets no entry; bps 10000 leaves a zero pool", () => {
    const r = split(1000n, 2500, [
      ["a", 0n],
      ["b", 7n],
    ]);
    expect([...r.provers]).toEqual([["b", 750n]]);
    const all = split(1000n, 10_000, [["b", 7n]]);
    expect(all.sequencer).toBe(1000n);
    expect([...all.provers]).toEqual([["b", 0n]]);
  });

  it("reward 0 pays nothing", () => {
    const r = split(0n, 2500, [["a", 1n]]);
    expect(r.sequencer).toBe(0n);
    expect([...r.provers]).toEqual([["a", 0n]]);
  });

  it("validates its input", () => {
    for (const bps of [-1, 10_001, 2.5, Number.NaN]) {
      expect(() => split(1000n, bps, [["a", 1n]])).toThrow(RangeError);
      expect(() => split(1000n, bps, [["a", 1n]])).toThrow(/sequencerBps/);
    }
    expect(() => split(-1n, 0, [["a", 1n]])).toThrow(RangeError);
    expect(() => split(1000n, 0, [["a", -1n]])).toThrow(RangeError);
    expect(() => split(1000n, 0, [])).not.toThrow();
    expect(() => split(1000n, 10_000, [])).not.toThrow();
  });
});

describe("sharesPayouts", () => {
  it("sequencer first, then provers by address ascending, zero amounts omitted", () => {
    // sequencer floor(1000*2500/10000) = 250; pool 750 over shares 2+1 = 3: 0x0b 500, 0x0a 250
    const rows = sharesPayouts({
      reward: 1000n,
      sequencerBps: 2500,
      sequencer: SEQ,
      shares: new Map([
        ["0x0b", 2n],
        ["0x0c", 0n],
        ["0x0a", 1n],
      ]),
    });
    expect(rows).toEqual([
      { recipient: SEQ, role: "sequencer", amount: 250n },
      { recipient: "0x0a", role: "prover", amount: 250n },
      { recipient: "0x0b", role: "prover", amount: 500n },
    ]);
  });

  it("omits a zero sequencer part and zero prover parts", () => {
    // bps 0, pool 2 over 3 equal shares: 0 each rem 2; 2 wei left -> 0x01, 0x02 (ties by address)
    const rows = sharesPayouts({
      reward: 2n,
      sequencerBps: 0,
      sequencer: SEQ,
      shares: new Map([
        ["0x03", 1n],
        ["0x02", 1n],
        ["0x01", 1n],
      ]),
    });
    expect(rows).toEqual([
      { recipient: "0x01", role: "prover", amount: 1n },
      { recipient: "0x02", role: "prover", amount: 1n },
    ]);
  });

  it("with no shares the sequencer takes the whole reward in one row", () => {
    const rows = sharesPayouts({
      reward: 77n,
      sequencerBps: 100,
      sequencer: SEQ,
      shares: new Map(),
    });
    expect(rows).toEqual([{ recipient: SEQ, role: "sequencer", amount: 77n }]);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const addressArb = fc
  .integer({ min: 0, max: 0xff })
  .map((n) => `0x${n.toString(16).padStart(2, "0")}`);
const shareArb = fc.oneof(
  fc.bigInt({ min: 0n, max: 3n }),
  fc.bigInt({ min: 0n, max: 1_000_000n }),
  fc.bigInt({ min: 0n, max: 10n ** 24n }),
);
const inputArb = fc.record({
  reward: fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 10n ** 30n })),
  sequencerBps: fc.oneof(fc.constantFrom(0, 10_000), fc.integer({ min: 0, max: 10_000 })),
  shares: fc
    .uniqueArray(fc.tuple(addressArb, shareArb), { selector: ([a]) => a, maxLength: 8 })
    .map((entries) => new Map(entries)),
});

describe("splitSharesReward properties", () => {
  it("parts sum to the reward; the cut is floor(reward*bps/1e4); provers within 1 wei", () => {
    fc.assert(
      fc.property(inputArb, ({ reward, sequencerBps, shares }) => {
        const r = splitSharesReward({ reward, sequencerBps, sequencer: SEQ, shares });
        const proverSum = [...r.provers.values()].reduce((a, b) => a + b, 0n);
        expect(r.sequencer + proverSum).toBe(reward);

        const positive = [...shares].filter(([, s]) => s > 0n);
        const totalShares = positive.reduce((a, [, s]) => a + s, 0n);
        if (totalShares === 0n) {
          expect(r.sequencer).toBe(reward);
          expect(r.provers.size).toBe(0);
          return;
        }
        // cut c = floor(reward*bps/1e4)  <=>  c*1e4 <= reward*bps < (c+1)*1e4
        const bps = BigInt(sequencerBps);
        expect(r.sequencer * 10_000n <= reward * bps).toBe(true);
        expect(reward * bps < (r.sequencer + 1n) * 10_000n).toBe(true);
        const pool = reward - r.sequencer;

        // exactly the provers with positive shares, by address ascending
        const ids = [...r.provers.keys()];
        expect(ids).toEqual(positive.map(([a]) => a).sort());
        for (const [addr, s] of positive) {
          const part = r.provers.get(addr)!;
          // |part - pool*s/S| < 1  <=>  |part*S - pool*s| < S
          const diff = part * totalShares - pool * s;
          expect(diff > -totalShares && diff < totalShares).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it("the extra wei go to the largest remainders, ties to the lower address", () => {
    fc.assert(
      fc.property(inputArb, ({ reward, sequencerBps, shares }) => {
        const r = splitSharesReward({ reward, sequencerBps, sequencer: SEQ, shares });
        const positive = [...shares].filter(([, s]) => s > 0n);
        const S = positive.reduce((a, [, s]) => a + s, 0n);
        if (S === 0n) return;
        const pool = reward - r.sequencer;
        const info = positive.map(([addr, s]) => ({
          addr,
          rem: (pool * s) % S,
          up: r.provers.get(addr)! * S > pool * s,
        }));
        for (const p of info.filter((i) => i.up)) {
          for (const q of info.filter((i) => !i.up)) {
            expect(p.rem > q.rem || (p.rem === q.rem && p.addr < q.addr)).toBe(true);
          }
        }
      }),
      RUNS,
    );
  });

  it("sharesPayouts carries the same amounts, ordered, without zeros", () => {
    fc.assert(
      fc.property(inputArb, ({ reward, sequencerBps, shares }) => {
        const input = { reward, sequencerBps, sequencer: SEQ, shares };
        const r = splitSharesReward(input);
        const rows = sharesPayouts(input);
        expect(rows.every((p) => p.amount > 0n)).toBe(true);
        expect(rows.reduce((a, p) => a + p.amount, 0n)).toBe(reward);
        const seqRows = rows.filter((p) => p.role === "sequencer");
        expect(seqRows).toEqual(
          r.sequencer > 0n ? [{ recipient: SEQ, role: "sequencer", amount: r.sequencer }] : [],
        );
        if (seqRows.length > 0) expect(rows[0]!.role).toBe("sequencer");
        const proverRows = rows.filter((p) => p.role === "prover");
        const addrs = proverRows.map((p) => p.recipient);
        expect(addrs).toEqual([...addrs].sort());
        for (const p of proverRows) expect(p.amount).toBe(r.provers.get(p.recipient));
        expect(proverRows.length).toBe([...r.provers.values()].filter((v) => v > 0n).length);
      }),
      RUNS,
    );
  });
});

describe("activeProvers", () => {
  it("are the operators whose work weighs something, sorted", () => {
    const work = new Map([
      ["0xcc", 3n],
      ["0xaa", 0n],
      ["0xbb", 1n],
    ]);
    expect(activeProvers(work)).toEqual(["0xbb", "0xcc"]);
  });

  it("are none when no work weighs anything", () => {
    expect(activeProvers(new Map([["0xaa", 0n]]))).toEqual([]);
    expect(activeProvers(new Map())).toEqual([]);
  });
});
