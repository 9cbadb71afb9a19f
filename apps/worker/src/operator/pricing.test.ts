import { defaultJobWeights } from "@prover-boost/core";
import { describe, expect, it } from "vitest";
import { parseBidConfig } from "./bid-config.ts";
import { type BidPolicy, blockWork, priceAuction } from "./pricing.ts";

const policy = (p: Partial<BidPolicy> = {}): BidPolicy => ({
  feeFloorWeiPerWeight: 1_000_000_000n,
  maxBond: 10_000n,
  capacity: 1,
  jobWeights: defaultJobWeights,
  ...p,
});
const auction = { txCount: 4, blockReward: 10n ** 18n, minBond: 1000n, maxFeeBps: 3000 };

describe("blockWork", () => {
  it("sums the weights of every node of the proof tree", () => {
    // 4 txs: 4 bases, 2 merges, one block root.
    expect(blockWork(4)).toBe(4n * 445n + 2n * 100n + 930n);
    expect(blockWork(1)).toBe(445n + 930n);
    expect(blockWork(0)).toBe(930n);
  });
});

describe("priceAuction", () => {
  it("bids the least whole basis point covering the floor, at the minimum bond", () => {
    const p = priceAuction(auction, policy());
    // floor 2910 * 1e9 wei = 2.91e12 of a 1e18 reward: 0.0291 bps, rounded up to 1.
    expect(p).toMatchObject({ bid: true, basisPointFee: 1, bondAmount: 1000n, work: 2910n });
    const exact = priceAuction(auction, policy({ feeFloorWeiPerWeight: 10n ** 18n / 2910n / 10n }));
    expect(exact.bid && exact.basisPointFee).toBe(1000);
  });

  it("never bids below the floor", () => {
    for (const floor of [1n, 7n, 123_456_789n, 10n ** 11n, 3n * 10n ** 13n]) {
      const p = priceAuction(auction, policy({ feeFloorWeiPerWeight: floor }));
      if (!p.bid) continue;
      expect(auction.blockReward * BigInt(p.basisPointFee)).toBeGreaterThanOrEqual(
        p.feeFloorWei * 10_000n,
      );
      expect(auction.blockReward * BigInt(p.basisPointFee - 1)).toBeLessThan(
        p.feeFloorWei * 10_000n,
      );
    }
  });

  it("skips an auction whose max fee is below the floor", () => {
    const p = priceAuction(
      { ...auction, maxFeeBps: 10 },
      policy({ feeFloorWeiPerWeight: 10n ** 12n }),
    );
    expect(p).toMatchObject({ bid: false, reason: "fee_above_max" });
  });

  it("skips an auction whose minimum bond is above the max bond", () => {
    expect(priceAuction({ ...auction, minBond: 10_001n }, policy())).toMatchObject({
      bid: false,
      reason: "bond_above_max",
    });
    expect(priceAuction({ ...auction, minBond: 10_000n }, policy()).bid).toBe(true);
  });

  it("skips a zero reward unless the floor is zero", () => {
    expect(priceAuction({ ...auction, blockReward: 0n }, policy())).toMatchObject({
      bid: false,
      reason: "no_reward",
    });
    expect(
      priceAuction({ ...auction, blockReward: 0n }, policy({ feeFloorWeiPerWeight: 0n })),
    ).toMatchObject({ bid: true, basisPointFee: 0 });
  });

  it("uses the configured job weights", () => {
    const weights = { ...defaultJobWeights, base: 0n, merge: 0n, block_root: 0n };
    expect(priceAuction(auction, policy({ jobWeights: weights }))).toMatchObject({
      bid: true,
      basisPointFee: 0,
      work: 0n,
    });
  });
});

describe("parseBidConfig", () => {
  it("reads wei strings, capacity and weight overrides", () => {
    const c = parseBidConfig({
      feeFloorWeiPerWeight: "5",
      maxBond: "100000000000000000000",
      capacity: 2,
      jobWeights: { base: "1" },
    });
    expect(c.feeFloorWeiPerWeight).toBe(5n);
    expect(c.maxBond).toBe(10n ** 20n);
    expect(c.jobWeights.base).toBe(1n);
    expect(c.jobWeights.merge).toBe(defaultJobWeights.merge);
    expect(c.pollMs).toBe(2000);
  });

  it("rejects numbers for wei, a zero capacity and unknown keys", () => {
    expect(() => parseBidConfig({ feeFloorWeiPerWeight: 5, maxBond: "1", capacity: 1 })).toThrow(
      /feeFloorWeiPerWeight/,
    );
    expect(() => parseBidConfig({ feeFloorWeiPerWeight: "5", maxBond: "1", capacity: 0 })).toThrow(
      /capacity/,
    );
    expect(() =>
      parseBidConfig({ feeFloorWeiPerWeight: "5", maxBond: "1", capacity: 1, fee: 3 }),
    ).toThrow(/bid config/);
  });
});
