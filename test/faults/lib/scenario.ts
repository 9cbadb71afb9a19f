// A fault scenario and the table row it produces. Scenarios run one after another (each in its
// own world); a scenario that throws still gets a row, with the error, so the table is complete.
import type { Columns } from "./measure.ts";

export interface Scenario {
  name: string;
  /** What is injected, for the table. */
  injected: string;
  run(): Promise<Columns>;
  /** A generous bound on its runtime (for the vitest timeout). */
  timeoutMs: number;
}

export interface Row extends Partial<Columns> {
  scenario: string;
  injected: string;
  error?: string;
}

export async function runScenario(s: Scenario): Promise<Row> {
  try {
    return { scenario: s.name, injected: s.injected, ...(await s.run()) };
  } catch (err) {
    return { scenario: s.name, injected: s.injected, error: String((err as Error)?.stack ?? err) };
  }
}

/** Whether a row meets the goal: zero in every loss column, and recovered. */
export function meetsGoal(r: Row): boolean {
  return (
    !r.error &&
    r.bidsLost === 0 &&
    r.proofsLost === 0 &&
    r.doublePayouts === 0 &&
    r.honestPenalized === 0 &&
    r.recoveredAfterMs !== null &&
    r.recoveredAfterMs !== undefined &&
    (r.resources ?? []).every((m) => m.flat)
  );
}

const HEADER = [
  "scenario",
  "injected",
  "accepted bids lost",
  "accepted proofs lost",
  "double payouts",
  "honest operators penalized",
  "recovered after",
];

const cell = (v: number | undefined) => (v === undefined ? "?" : String(v));

function recovered(r: Row): string {
  if (r.error) return "error";
  if (r.recoveredLabel) return r.recoveredLabel;
  if (r.recoveredAfterMs === null || r.recoveredAfterMs === undefined) return "not recovered";
  return `${(r.recoveredAfterMs / 1000).toFixed(1)} s`;
}

/** The table (markdown), then each row's notes and errors. */
export function formatTable(rows: Row[]): string {
  const body = rows.map((r) => [
    r.scenario,
    r.injected,
    cell(r.bidsLost),
    cell(r.proofsLost),
    cell(r.doublePayouts),
    cell(r.honestPenalized),
    recovered(r),
  ]);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  const out = [line(HEADER), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`];
  for (const b of body) out.push(line(b));
  out.push("");
  for (const r of rows) {
    const notes = [...(r.notes ?? [])];
    for (const m of r.resources ?? []) {
      notes.push(`${m.metric}: ${m.first} -> ${m.last}${m.flat ? "" : " (not flat)"}`);
    }
    if (r.error) notes.push(`error: ${r.error.split("\n").slice(0, 3).join(" ")}`);
    out.push(`${meetsGoal(r) ? "ok  " : "FAIL"} ${r.scenario}: ${notes.join("; ")}`);
  }
  return out.join("\n");
}
