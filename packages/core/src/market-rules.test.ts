// Market rules that protect the auction and the shares model from its own participants:
// quotes that expired before the close cannot win, amounts are bounded, and the shares model
// weights each operator by its work in the block.
import { describe, expect, it } from "vitest";
import {
  checkQuote,
  eligibleAtClose,
  LEDGER_SOURCE_CAP_WEI,
  MAX_AMOUNT_WEI,
  settleAuction,
} from "./auction.ts";
import { boosterShares, updateActivityScore } from "./booster.ts";
import { DomainError } from "./errors.ts";
import { defaultJobWeights, weightedWork } from "./rewards.ts";
import { sharesPayouts, workWeightedShares } from "./shares.ts";

const bid = (id: string, fee: number, validUntilSlot: bigint, seq: bigint) => ({
  id,
  basisPointFee: fee,
  bondAmount: 1000n,
  seq,
  validUntilSlot,
});

describe("quotes expired at close", () => {
  // Main settled every active bid: the cheapest quote won although it expired at slot 9.
  it("a quote whose validUntilSlot is before the close slot cannot win; the next valid bid does", () => {
    const bids = [bid("cheap-expired", 100, 9n, 1n), bid("valid", 200, 10n, 2n)];
    const { eligible, expired } = eligibleAtClose(bids, 10n);
    expect(expired.map((b) => b.id)).toEqual(["cheap-expired"]);
    const outcome = settleAuction(eligible, "first", 3000);
    expect(outcome.winner?.id).toBe("valid");
    expect(outcome.settlementFeeBps).toBe(200);
  });

  it("valid through the close slot itself is still valid (Aztec: validUntilSlot >= slot)", () => {
    expect(eligibleAtClose([bid("a", 100, 10n, 1n)], 10n).eligible).toHaveLength(1);
  });

  it("second-price pays the runner-up among the valid bids only", () => {
    const bids = [
      bid("w", 100, 20n, 1n),
      bid("expired-runner-up", 150, 5n, 2n),
      bid("r", 400, 20n, 3n),
    ];
    const outcome = settleAuction(eligibleAtClose(bids, 10n).eligible, "second", 3000);
    expect(outcome.winner?.id).toBe("w");
    expect(outcome.settlementFeeBps).toBe(400);
  });

  it("with every quote expired the auction is unclaimed", () => {
    const { eligible } = eligibleAtClose([bid("a", 100, 3n, 1n)], 4n);
    expect(settleAuction(eligible, "first", 3000).winner).toBeNull();
  });
});

describe("amount bounds", () => {
  it("the source cap keeps every balance within NUMERIC(78, 0)", () => {
    // Guarded balances together hold at most what came in from both sources.
    expect(2n * LEDGER_SOURCE_CAP_WEI + MAX_AMOUNT_WEI).toBeLessThan(10n ** 78n);
    expect(MAX_AMOUNT_WEI).toBeLessThan(LEDGER_SOURCE_CAP_WEI);
  });

  it("a bond above MAX_AMOUNT_WEI is refused with AMOUNT_TOO_LARGE", () => {
    const auction = {
      blockNumber: 5,
      minBond: 1n,
      maxFeeBps: 3000,
      biddingClosesAt: 1000,
      status: "open" as const,
    };
    const quote = {
      epochToProve: 5n,
      validUntilSlot: 10n,
      bondAmount: MAX_AMOUNT_WEI + 1n,
      basisPointFee: 100,
    };
    const run = () => checkQuote(auction, quote, { ms: 0, slot: 1n });
    expect(run).toThrow(DomainError);
    try {
      run();
    } catch (err) {
      expect((err as DomainError).code).toBe("AMOUNT_TOO_LARGE");
    }
    expect(() =>
      checkQuote(auction, { ...quote, bondAmount: MAX_AMOUNT_WEI }, { ms: 0, slot: 1n }),
    ).not.toThrow();
  });
});

describe("shares weighted by work", () => {
  const A = "0x00000000000000000000000000000000000000aa";
  const B = "0x00000000000000000000000000000000000000bb";
  // Block of 4 txs: A proves the root, both merges and three base proofs; B one base proof.
  const proofs = [
    { operator: A, type: "block_root" as const },
    { operator: A, type: "merge" as const },
    { operator: A, type: "merge" as const },
    { operator: A, type: "base" as const },
    { operator: A, type: "base" as const },
    { operator: A, type: "base" as const },
    { operator: B, type: "base" as const },
  ];
  const shares = new Map([
    [A, 1_000_000n],
    [B, 1_000_000n],
  ]);

  it("multiplies shares by weighted work; no work, no weight", () => {
    const work = weightedWork(proofs, defaultJobWeights);
    expect(work.get(A)).toBe(930n + 2n * 100n + 3n * 445n);
    expect(work.get(B)).toBe(445n);
    const weighted = workWeightedShares(new Map([...shares, ["0xcc", 5n]]), work);
    expect(weighted).toEqual(
      new Map([
        [A, 2_465_000_000n],
        [B, 445_000_000n],
      ]),
    );
  });

  // Main paid the pool by shares alone: B's single base proof earned 250000, as much as A's
  // root, merges and base proofs together.
  it("one base proof no longer earns as much as the root's prover (pinned, docs/economics.md)", () => {
    const work = weightedWork(proofs, defaultJobWeights);
    const payouts = sharesPayouts({
      reward: 1_000_000n,
      sequencerBps: 5000,
      sequencer: "0x0000000000000000000000000000000000000005",
      shares: workWeightedShares(shares, work),
    });
    expect(payouts).toEqual([
      {
        recipient: "0x0000000000000000000000000000000000000005",
        role: "sequencer",
        amount: 500_000n,
      },
      { recipient: A, role: "prover", amount: 423_540n },
      { recipient: B, role: "prover", amount: 76_460n },
    ]);
  });
});

describe("the shares worked example (pinned, docs/economics.md)", () => {
  it("pays every wei of the reward, as the document says", () => {
    const [A, B, C] = ["0xaaaa", "0xbbbb", "0xcccc"];
    const scores = new Map([
      [A, updateActivityScore({ value: 15_000_000n, epoch: 40n }, 41n)],
      [B, updateActivityScore({ value: 13_575_001n, epoch: 40n }, 41n)],
      [C, updateActivityScore({ value: 0n, epoch: 0n }, 41n)],
    ]);
    expect([...scores.values()].map((s) => s.value)).toEqual([15_000_000n, 13_600_001n, 125_000n]);
    const shares = new Map([...scores].map(([who, s]) => [who, boosterShares(s.value)]));
    expect([...shares.values()]).toEqual([1_000_000n, 804_001n, 100_000n]);
    const payouts = sharesPayouts({
      reward: 10n ** 18n,
      sequencerBps: 1000,
      sequencer: "0x5e0",
      shares,
    });
    expect(payouts.map((p) => [p.recipient, p.amount])).toEqual([
      ["0x5e0", 100_000_000_000_000_000n],
      [A, 472_688_827_369_313_356n],
      [B, 380_042_289_893_755_308n],
      [C, 47_268_882_736_931_336n],
    ]);
    expect(payouts.reduce((s, p) => s + p.amount, 0n)).toBe(10n ** 18n);
  });
});
