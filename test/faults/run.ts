// `npm run faults`: runs every fault scenario (or those whose name contains one of the
// arguments) against real processes, each in its own world, and prints one table:
// scenario | injected | accepted bids lost | accepted proofs lost | double payouts |
// honest operators penalized | recovered after. Exits 1 unless every row meets the goal (zero
// in every loss column, recovered, resources flat).
import { killAll, removeEverything } from "./lib/registry.ts";
import { formatTable, meetsGoal, type Row, runScenario } from "./lib/scenario.ts";
import { scenarios } from "./scenarios/index.ts";

const filters = process.argv.slice(2).map((a) => a.toLowerCase());
const chosen = scenarios.filter(
  (s) => filters.length === 0 || filters.some((f) => s.name.toLowerCase().includes(f)),
);
if (chosen.length === 0) {
  process.stderr.write(`no scenario matches ${filters.join(", ")}\n`);
  process.exit(2);
}
// Ctrl-C or a kill: nothing started here may outlive the run.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killAll();
    void removeEverything().finally(() => process.exit(130));
  });
}
const rows: Row[] = [];
for (const s of chosen) {
  process.stderr.write(`running: ${s.name}\n`);
  const started = Date.now();
  const row = await runScenario(s);
  rows.push(row);
  process.stderr.write(
    `  ${meetsGoal(row) ? "ok" : "FAIL"} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
}
process.stdout.write(`${formatTable(rows)}\n`);
await removeEverything();
process.exit(rows.every(meetsGoal) ? 0 : 1);
