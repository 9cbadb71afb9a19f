// The vitest side of a scenario: its row must meet the goal. The row is printed first, so a
// failing run shows the whole measurement, not only the first column that is off.
import { expect } from "vitest";
import { formatTable, type Row } from "./scenario.ts";

export function expectGoal(row: Row): void {
  console.log(formatTable([row]));
  expect(row.error).toBeUndefined();
  expect({
    acceptedBidsLost: row.bidsLost,
    acceptedProofsLost: row.proofsLost,
    doublePayouts: row.doublePayouts,
    honestOperatorsPenalized: row.honestPenalized,
    recovered: typeof row.recoveredAfterMs === "number",
    notFlat: (row.resources ?? []).filter((m) => !m.flat).map((m) => m.metric),
  }).toEqual({
    acceptedBidsLost: 0,
    acceptedProofsLost: 0,
    doublePayouts: 0,
    honestOperatorsPenalized: 0,
    recovered: true,
    notFlat: [],
  });
}
