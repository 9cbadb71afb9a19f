// Unit and property tests of checkQuote in auction.ts: every rule a quote must meet (auction
// open, right block, fee under the cap, bond over the minimum, not expired), each on its exact
// boundary, and which rule is reported first when several are broken. Ranking and settling bids
// are in auction-ranking.test.ts.
import { errorStatus } from "@prover-boost/contract";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type AuctionTerms, checkQuote, type QuoteTerms } from "./auction.ts";
import { DomainError, type ErrorCode, isDomainError } from "./errors.ts";

const RUNS = 2000;
const PROPERTY_TIMEOUT = 120_000;

// Every boundary sits exactly on its limit: fee == cap, bond == minimum, validUntilSlot == slot,
// and now is the last millisecond before bidding closes.
const auction: AuctionTerms = {
  blockNumber: 7,
  minBond: 1_000n,
  maxFeeBps: 5000,
  biddingClosesAt: 1_000_000,
  status: "open",
};
const quote: QuoteTerms = {
  epochToProve: 7n,
  validUntilSlot: 10n,
  bondAmount: 1_000n,
  basisPointFee: 5000,
};
const now = { ms: 999_999, slot: 10n };

function codeOf(fn: () => unknown): ErrorCode | "no error" {
  try {
    fn();
  } catch (err) {
    if (isDomainError(err)) return err.code;
    throw err;
  }
  return "no error";
}

describe("checkQuote", () => {
  it("accepts a quote sitting exactly on every boundary", () => {
    expect(() => checkQuote(auction, quote, now)).not.toThrow();
  });

  it("accepts comfortably valid quotes", () => {
    const q = { ...quote, basisPointFee: 0, bondAmount: 10n ** 24n, validUntilSlot: 10n ** 9n };
    expect(() => checkQuote(auction, q, { ms: 0, slot: 0n })).not.toThrow();
  });

  it.each(["committed", "unclaimed"] as const)(
    "is AUCTION_CLOSED when the status is %s",
    (status) => {
      expect(codeOf(() => checkQuote({ ...auction, status }, quote, now))).toBe("AUCTION_CLOSED");
    },
  );

  it("is AUCTION_CLOSED from the closing millisecond on", () => {
    expect(codeOf(() => checkQuote(auction, quote, { ...now, ms: 1_000_000 }))).toBe(
      "AUCTION_CLOSED",
    );
    expect(codeOf(() => checkQuote(auction, quote, { ...now, ms: 1_000_001 }))).toBe(
      "AUCTION_CLOSED",
    );
    expect(codeOf(() => checkQuote(auction, quote, { ...now, ms: 999_999 }))).toBe("no error");
  });

  it.each([6n, 8n, 0n, 7n + 2n ** 64n])("is WRONG_BLOCK for epochToProve %s", (epochToProve) => {
    expect(codeOf(() => checkQuote(auction, { ...quote, epochToProve }, now))).toBe("WRONG_BLOCK");
  });

  it("is FEE_ABOVE_CAP one basis point over the cap, fine at the cap", () => {
    expect(codeOf(() => checkQuote(auction, { ...quote, basisPointFee: 5001 }, now))).toBe(
      "FEE_ABOVE_CAP",
    );
    expect(codeOf(() => checkQuote(auction, { ...quote, basisPointFee: 10_000 }, now))).toBe(
      "FEE_ABOVE_CAP",
    );
    expect(codeOf(() => checkQuote(auction, { ...quote, basisPointFee: 5000 }, now))).toBe(
      "no error",
    );
    expect(codeOf(() => checkQuote(auction, { ...quote, basisPointFee: 4999 }, now))).toBe(
      "no error",
    );
  });

  it("is BOND_BELOW_MINIMUM one wei under the minimum, fine at it", () => {
    expect(codeOf(() => checkQuote(auction, { ...quote, bondAmount: 999n }, now))).toBe(
      "BOND_BELOW_MINIMUM",
    );
    expect(codeOf(() => checkQuote(auction, { ...quote, bondAmount: 0n }, now))).toBe(
      "BOND_BELOW_MINIMUM",
    );
    expect(codeOf(() => checkQuote(auction, { ...quote, bondAmount: 1_000n }, now))).toBe(
      "no error",
    );
    expect(codeOf(() => checkQuote(auction, { ...quote, bondAmount: 1_001n }, now))).toBe(
      "no error",
    );
  });

  it("is QUOTE_EXPIRED once the current slot is past validUntilSlot, fine in that slot", () => {
    expect(codeOf(() => checkQuote(auction, { ...quote, validUntilSlot: 9n }, now))).toBe(
      "QUOTE_EXPIRED",
    );
    expect(codeOf(() => checkQuote(auction, quote, { ...now, slot: 11n }))).toBe("QUOTE_EXPIRED");
    expect(codeOf(() => checkQuote(auction, { ...quote, validUntilSlot: 10n }, now))).toBe(
      "no error",
    );
    expect(codeOf(() => checkQuote(auction, { ...quote, validUntilSlot: 11n }, now))).toBe(
      "no error",
    );
  });

  it("throws a DomainError carrying the mapped HTTP status", () => {
    const cases: [() => void, ErrorCode, number][] = [
      [() => checkQuote({ ...auction, status: "committed" }, quote, now), "AUCTION_CLOSED", 409],
      [() => checkQuote(auction, { ...quote, epochToProve: 8n }, now), "WRONG_BLOCK", 422],
      [() => checkQuote(auction, { ...quote, basisPointFee: 5001 }, now), "FEE_ABOVE_CAP", 422],
      [() => checkQuote(auction, { ...quote, bondAmount: 1n }, now), "BOND_BELOW_MINIMUM", 422],
      [() => checkQuote(auction, { ...quote, validUntilSlot: 1n }, now), "QUOTE_EXPIRED", 422],
    ];
    for (const [fn, code, status] of cases) {
      let caught: unknown;
      try {
        fn();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(DomainError);
      expect((caught as DomainError).code).toBe(code);
      expect(errorStatus[(caught as DomainError).code]).toBe(status);
      expect((caught as DomainError).message.length).toBeGreaterThan(0);
    }
  });

  it("reports the first broken rule in the order state, block, price, bond, expiry", () => {
    const closedAuction = { ...auction, status: "committed" as const };
    const bad = {
      epochToProve: 8n,
      basisPointFee: 5001,
      bondAmount: 999n,
      validUntilSlot: 9n,
    };
    expect(codeOf(() => checkQuote(closedAuction, { ...quote, ...bad }, now))).toBe(
      "AUCTION_CLOSED",
    );
    expect(codeOf(() => checkQuote(auction, { ...quote, ...bad }, now))).toBe("WRONG_BLOCK");
    const { epochToProve: _b, ...afterBlock } = bad;
    expect(codeOf(() => checkQuote(auction, { ...quote, ...afterBlock }, now))).toBe(
      "FEE_ABOVE_CAP",
    );
    const { basisPointFee: _f, ...afterFee } = afterBlock;
    expect(codeOf(() => checkQuote(auction, { ...quote, ...afterFee }, now))).toBe(
      "BOND_BELOW_MINIMUM",
    );
    const { bondAmount: _m, ...afterBond } = afterFee;
    expect(codeOf(() => checkQuote(auction, { ...quote, ...afterBond }, now))).toBe(
      "QUOTE_EXPIRED",
    );
  });

  it(
    "reports the first broken rule (by precedence) for random near-boundary quotes",
    () => {
      const precedence: ErrorCode[] = [
        "AUCTION_CLOSED",
        "WRONG_BLOCK",
        "FEE_ABOVE_CAP",
        "BOND_BELOW_MINIMUM",
        "QUOTE_EXPIRED",
      ];
      fc.assert(
        fc.property(
          fc.record({
            status: fc.constantFrom("open", "committed", "unclaimed") as fc.Arbitrary<
              AuctionTerms["status"]
            >,
            ms: fc.integer({ min: 999_990, max: 1_000_010 }),
            slot: fc.bigInt({ min: 8n, max: 12n }),
            epochToProve: fc.bigInt({ min: 5n, max: 9n }),
            basisPointFee: fc.integer({ min: 4990, max: 5010 }),
            bondAmount: fc.bigInt({ min: 990n, max: 1010n }),
            validUntilSlot: fc.bigInt({ min: 8n, max: 12n }),
          }),
          (r) => {
            // Each rule on its own, then the documented precedence picks which one is reported.
            const broken = new Set<ErrorCode>();
            if (r.status !== "open") broken.add("AUCTION_CLOSED");
            if (r.ms >= auction.biddingClosesAt) broken.add("AUCTION_CLOSED");
            if (r.epochToProve !== 7n) broken.add("WRONG_BLOCK");
            if (r.basisPointFee > auction.maxFeeBps) broken.add("FEE_ABOVE_CAP");
            if (r.bondAmount < auction.minBond) broken.add("BOND_BELOW_MINIMUM");
            if (r.validUntilSlot < r.slot) broken.add("QUOTE_EXPIRED");
            const expected = precedence.find((code) => broken.has(code)) ?? "no error";
            const q: QuoteTerms = {
              epochToProve: r.epochToProve,
              validUntilSlot: r.validUntilSlot,
              bondAmount: r.bondAmount,
              basisPointFee: r.basisPointFee,
            };
            expect(
              codeOf(() =>
                checkQuote({ ...auction, status: r.status }, q, { ms: r.ms, slot: r.slot }),
              ),
            ).toBe(expected);
          },
        ),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );
});
