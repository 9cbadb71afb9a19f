import { describe, expect, it } from "vitest";
import { InvariantError } from "./errors.ts";
import {
  advanceStage,
  canTransition,
  isFinalStage,
  isProvingStage,
  type Stage,
  type StageTimes,
  stages,
} from "./lifecycle.ts";

// The allowed transitions, written out as data (independent of lifecycle.ts's table).
const allowed = new Set([
  "auction_open->committed",
  "auction_open->unclaimed",
  "committed->proving",
  "proving->proven",
  "proving->deadline_missed",
  "proven->paid",
  "unclaimed->open_proving",
  "deadline_missed->open_proving",
  "open_proving->proven",
  "open_proving->expired",
]);

const allStages: Stage[] = [
  "auction_open",
  "committed",
  "proving",
  "proven",
  "paid",
  "unclaimed",
  "deadline_missed",
  "open_proving",
  "expired",
];

const pairs = allStages.flatMap((from) => allStages.map((to) => [from, to] as const));

describe("stages", () => {
  it("are exactly the nine stages", () => {
    expect([...stages].sort()).toEqual([...allStages].sort());
    expect(new Set(stages).size).toBe(9);
  });

  it("cover all 81 pairs with exactly 10 allowed", () => {
    expect(pairs).toHaveLength(81);
    expect(pairs.filter(([from, to]) => canTransition(from, to))).toHaveLength(allowed.size);
  });
});

describe("transitions", () => {
  it.each(pairs)("%s -> %s is allowed only if listed", (from, to) => {
    const ok = allowed.has(`${from}->${to}`);
    expect(canTransition(from, to)).toBe(ok);
    const times: StageTimes = { auction_open: 1 };
    if (ok) {
      expect(advanceStage(from, to, times, 42)).toEqual({ auction_open: 1, [to]: 42 });
    } else {
      let caught: unknown;
      try {
        advanceStage(from, to, times, 42);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InvariantError);
      expect((caught as InvariantError).code).toBe("INTERNAL");
      expect((caught as InvariantError).message).toContain(from);
      expect((caught as InvariantError).message).toContain(to);
    }
  });

  it("has paid and expired as the only terminal stages", () => {
    const terminal = allStages.filter((from) => allStages.every((to) => !canTransition(from, to)));
    expect(terminal).toEqual(["paid", "expired"]);
  });

  it("never allows staying in place", () => {
    for (const stage of allStages) expect(canTransition(stage, stage)).toBe(false);
  });
});

describe("advanceStage", () => {
  it("records each timestamp and keeps the earlier ones along the happy path", () => {
    let times: StageTimes = { auction_open: 100 };
    times = advanceStage("auction_open", "committed", times, 200);
    times = advanceStage("committed", "proving", times, 300);
    times = advanceStage("proving", "proven", times, 400);
    times = advanceStage("proven", "paid", times, 500);
    expect(times).toEqual({
      auction_open: 100,
      committed: 200,
      proving: 300,
      proven: 400,
      paid: 500,
    });
  });

  it("records the recovery paths", () => {
    let missed: StageTimes = { auction_open: 1, committed: 2, proving: 3 };
    missed = advanceStage("proving", "deadline_missed", missed, 4);
    missed = advanceStage("deadline_missed", "open_proving", missed, 5);
    missed = advanceStage("open_proving", "proven", missed, 6);
    expect(missed).toEqual({
      auction_open: 1,
      committed: 2,
      proving: 3,
      deadline_missed: 4,
      open_proving: 5,
      proven: 6,
    });

    let unclaimed: StageTimes = {};
    unclaimed = advanceStage("auction_open", "unclaimed", unclaimed, 10);
    unclaimed = advanceStage("unclaimed", "open_proving", unclaimed, 20);
    unclaimed = advanceStage("open_proving", "proven", unclaimed, 30);
    unclaimed = advanceStage("proven", "paid", unclaimed, 40);
    expect(unclaimed).toEqual({ unclaimed: 10, open_proving: 20, proven: 30, paid: 40 });
  });

  it("returns a new object and leaves the input untouched", () => {
    const times: StageTimes = { auction_open: 7 };
    const next = advanceStage("auction_open", "committed", times, 8);
    expect(next).not.toBe(times);
    expect(times).toEqual({ auction_open: 7 });
    expect(next).toEqual({ auction_open: 7, committed: 8 });
  });

  it("keeps a timestamp of 0", () => {
    expect(advanceStage("auction_open", "committed", { auction_open: 0 }, 0)).toEqual({
      auction_open: 0,
      committed: 0,
    });
  });

  it("does not record anything when the move is refused", () => {
    const times: StageTimes = { auction_open: 1 };
    expect(() => advanceStage("auction_open", "paid", times, 2)).toThrow(InvariantError);
    expect(times).toEqual({ auction_open: 1 });
  });
});

describe("isFinalStage", () => {
  it.each(allStages)("%s is final only if paid or expired", (stage) => {
    expect(isFinalStage(stage)).toBe(stage === "paid" || stage === "expired");
  });
});

describe("isProvingStage", () => {
  it.each(allStages)("%s", (stage) => {
    expect(isProvingStage(stage)).toBe(stage === "proving" || stage === "open_proving");
  });
});
