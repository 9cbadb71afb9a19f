// Unit and property tests of ranking and settling bids in auction.ts: compareBids (lower fee,
// then larger bond, then earlier arrival) and settleAuction (winner, runner-up and the fee paid
// under first- and second-price rules). Checking a single quote is in auction-quote.test.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareBids, type RankedBid, settleAuction } from "./auction.ts";

const RUNS = 2000;
const PROPERTY_TIMEOUT = 120_000;

const bid = (basisPointFee: number, bondAmount: bigint, seq: bigint): RankedBid => ({
  basisPointFee,
  bondAmount,
  seq,
});

describe("compareBids by hand", () => {
  it("ranks the lower fee first whatever the bond and arrival", () => {
    expect(compareBids(bid(100, 1n, 9n), bid(101, 10n ** 30n, 0n))).toBeLessThan(0);
    expect(compareBids(bid(101, 10n ** 30n, 0n), bid(100, 1n, 9n))).toBeGreaterThan(0);
  });

  it("breaks a fee tie by the larger bond", () => {
    expect(compareBids(bid(100, 2n, 9n), bid(100, 1n, 0n))).toBeLessThan(0);
    expect(compareBids(bid(100, 1n, 0n), bid(100, 2n, 9n))).toBeGreaterThan(0);
  });

  it("breaks a fee and bond tie by the earlier arrival", () => {
    expect(compareBids(bid(100, 5n, 3n), bid(100, 5n, 4n))).toBeLessThan(0);
    expect(compareBids(bid(100, 5n, 4n), bid(100, 5n, 3n))).toBeGreaterThan(0);
  });

  it("is zero only for identical terms", () => {
    expect(compareBids(bid(100, 5n, 3n), bid(100, 5n, 3n))).toBe(0);
  });

  it("sorts a small book as the rule says", () => {
    const book = [
      bid(300, 10n, 0n),
      bid(200, 5n, 1n),
      bid(200, 9n, 5n),
      bid(400, 100n, 2n),
      bid(200, 9n, 3n),
      bid(0, 0n, 4n),
    ];
    expect([...book].sort(compareBids)).toEqual([
      bid(0, 0n, 4n),
      bid(200, 9n, 3n),
      bid(200, 9n, 5n),
      bid(200, 5n, 1n),
      bid(300, 10n, 0n),
      bid(400, 100n, 2n),
    ]);
  });
});

// Small ranges so that fee ties and fee-and-bond ties are frequent.
const bidArb = fc.record({
  basisPointFee: fc.integer({ min: 0, max: 12 }),
  bondAmount: fc.oneof(fc.bigInt({ min: 0n, max: 4n }), fc.bigInt({ min: 0n, max: 10n ** 24n })),
  seq: fc.bigInt({ min: 0n, max: 30n }),
});

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** The rule, stated as three implications: a ranks strictly before b. */
const ranksBefore = (a: RankedBid, b: RankedBid): boolean =>
  a.basisPointFee < b.basisPointFee ||
  (a.basisPointFee === b.basisPointFee && a.bondAmount > b.bondAmount) ||
  (a.basisPointFee === b.basisPointFee && a.bondAmount === b.bondAmount && a.seq < b.seq);

describe("compareBids properties", () => {
  it(
    "is a total order that agrees with the rule",
    () => {
      fc.assert(
        fc.property(bidArb, bidArb, bidArb, (a, b, c) => {
          expect(compareBids(a, a)).toBe(0);
          expect(sign(compareBids(a, b)) + sign(compareBids(b, a))).toBe(0);
          // Zero only for the same terms (no two distinct bids are "equal").
          const same = a.basisPointFee === b.basisPointFee && a.bondAmount === b.bondAmount;
          expect(compareBids(a, b) === 0).toBe(same && a.seq === b.seq);
          // Agrees with the rule in both directions.
          expect(compareBids(a, b) < 0).toBe(ranksBefore(a, b));
          expect(compareBids(a, b) > 0).toBe(ranksBefore(b, a));
          // Transitive.
          if (compareBids(a, b) <= 0 && compareBids(b, c) <= 0) {
            expect(compareBids(a, c)).toBeLessThanOrEqual(0);
          }
          if (compareBids(a, b) < 0 && compareBids(b, c) < 0) {
            expect(compareBids(a, c)).toBeLessThan(0);
          }
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    "sorts any book into the same rule-respecting sequence whatever the input order",
    () => {
      const bookArb = fc
        .uniqueArray(bidArb, { selector: (b) => b.seq, maxLength: 20 })
        .chain((book) =>
          fc.tuple(
            fc.constant(book),
            fc.shuffledSubarray(book, { minLength: book.length, maxLength: book.length }),
          ),
        );
      fc.assert(
        fc.property(bookArb, ([book, shuffled]) => {
          const sorted = [...book].sort(compareBids);
          for (let i = 1; i < sorted.length; i++) {
            expect(ranksBefore(sorted[i - 1]!, sorted[i]!)).toBe(true);
          }
          expect([...shuffled].sort(compareBids)).toEqual(sorted);
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );
});

interface NamedBid extends RankedBid {
  name: string;
}
const named = (name: string, fee: number, bond: bigint, seq: bigint): NamedBid => ({
  name,
  ...bid(fee, bond, seq),
});

describe("settleAuction by hand", () => {
  const book = [
    named("late-cheap", 200, 5n, 3n),
    named("expensive", 300, 50n, 0n),
    named("cheap-big-bond", 200, 9n, 2n),
    named("cheap-small-bond", 200, 5n, 1n),
  ];

  it("has no winner and no settlement fee without bids", () => {
    for (const pricing of ["first", "second"] as const) {
      expect(settleAuction([], pricing, 5000)).toEqual({
        winner: null,
        runnerUp: null,
        settlementFeeBps: null,
      });
    }
  });

  it("first-price pays the winner its own fee", () => {
    const outcome = settleAuction(book, "first", 5000);
    expect(outcome.winner?.name).toBe("cheap-big-bond");
    expect(outcome.runnerUp?.name).toBe("cheap-small-bond");
    expect(outcome.settlementFeeBps).toBe(200);
  });

  it("second-price pays the runner-up's fee", () => {
    const book2 = [named("a", 100, 1n, 0n), named("b", 250, 1n, 1n), named("c", 400, 1n, 2n)];
    const outcome = settleAuction(book2, "second", 5000);
    expect(outcome.winner?.name).toBe("a");
    expect(outcome.runnerUp?.name).toBe("b");
    expect(outcome.settlementFeeBps).toBe(250);
    expect(settleAuction(book2, "first", 5000).settlementFeeBps).toBe(100);
    // A fee tie at the top: the runner-up's fee equals the winner's.
    expect(settleAuction(book, "second", 5000).settlementFeeBps).toBe(200);
  });

  it("second-price with a single bid pays the cap", () => {
    const outcome = settleAuction([named("only", 120, 1n, 0n)], "second", 4321);
    expect(outcome.winner?.name).toBe("only");
    expect(outcome.runnerUp).toBeNull();
    expect(outcome.settlementFeeBps).toBe(4321);
    expect(settleAuction([named("only", 120, 1n, 0n)], "first", 4321).settlementFeeBps).toBe(120);
  });

  it("returns the caller's bid objects and leaves the input order alone", () => {
    const input = [...book];
    const outcome = settleAuction(input, "second", 5000);
    expect(outcome.winner).toBe(book[2]);
    expect(outcome.runnerUp).toBe(book[3]);
    expect(input).toEqual(book);
    expect(input.map((b) => b.name)).toEqual(book.map((b) => b.name));
  });
});

describe("settleAuction properties", () => {
  const capArb = fc.integer({ min: 0, max: 10_000 });
  const bookUnderCap = capArb.chain((cap) =>
    fc.tuple(
      fc.constant(cap),
      fc.uniqueArray(
        fc.record({
          basisPointFee: fc.oneof(
            fc.integer({ min: 0, max: cap }),
            fc.integer({ min: Math.max(0, cap - 3), max: cap }),
          ),
          bondAmount: fc.bigInt({ min: 0n, max: 5n }),
          seq: fc.bigInt({ min: 0n, max: 1000n }),
        }),
        { selector: (b) => b.seq, maxLength: 15 },
      ),
      fc.constantFrom("first", "second") as fc.Arbitrary<"first" | "second">,
    ),
  );

  it(
    "picks a winner no other bid beats and a runner-up that beats the rest",
    () => {
      fc.assert(
        fc.property(bookUnderCap, ([cap, book, pricing]) => {
          const outcome = settleAuction(book, pricing, cap);
          if (book.length === 0) {
            expect(outcome).toEqual({ winner: null, runnerUp: null, settlementFeeBps: null });
            return;
          }
          const winner = outcome.winner!;
          expect(book).toContain(winner);
          for (const other of book) {
            if (other !== winner) expect(ranksBefore(other, winner)).toBe(false);
          }
          if (book.length === 1) expect(outcome.runnerUp).toBeNull();
          else {
            const runnerUp = outcome.runnerUp!;
            expect(runnerUp).not.toBe(winner);
            expect(book).toContain(runnerUp);
            expect(ranksBefore(winner, runnerUp)).toBe(true);
            for (const other of book) {
              if (other !== winner && other !== runnerUp) {
                expect(ranksBefore(other, runnerUp)).toBe(false);
              }
            }
          }
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    "settles between the winner's fee and the cap, per the pricing rule",
    () => {
      fc.assert(
        fc.property(bookUnderCap, ([cap, book, pricing]) => {
          const outcome = settleAuction(book, pricing, cap);
          if (book.length === 0) return;
          const fee = outcome.settlementFeeBps!;
          expect(fee).toBeLessThanOrEqual(cap);
          expect(fee).toBeGreaterThanOrEqual(outcome.winner!.basisPointFee);
          const lowest = Math.min(...book.map((b) => b.basisPointFee));
          if (pricing === "first") expect(fee).toBe(lowest);
          else if (book.length === 1) expect(fee).toBe(cap);
          else {
            // The second-lowest fee of the book, counting a tied lowest fee twice.
            const fees = book.map((b) => b.basisPointFee).sort((x, y) => x - y);
            expect(fee).toBe(fees[1]);
          }
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    "does not depend on the order the bids arrive in the array",
    () => {
      fc.assert(
        fc.property(
          bookUnderCap.chain(([cap, book, pricing]) =>
            fc.tuple(
              fc.constant(cap),
              fc.constant(book),
              fc.shuffledSubarray(book, { minLength: book.length, maxLength: book.length }),
              fc.constant(pricing),
            ),
          ),
          ([cap, book, shuffled, pricing]) => {
            expect(settleAuction(shuffled, pricing, cap)).toEqual(
              settleAuction(book, pricing, cap),
            );
          },
        ),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );
});
