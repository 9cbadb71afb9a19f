// One shard of bench:tree's load generator: simulated workers in their own process, driven by
// the parent over IPC (start, mark, report, stop; see bench/lib/fleet.ts). Exits when
// the parent goes away.
import { type Fleet, type FleetOptions, startFleet } from "../lib/fleet.ts";

let fleet: Fleet | null = null;
const ops: Record<string, (arg: unknown) => Promise<unknown>> = {
  async start(arg) {
    fleet = await startFleet(arg as FleetOptions);
  },
  mark: () => fleet!.mark(),
  report: () => fleet!.report(),
  async stop() {
    await fleet?.stop();
    fleet = null;
  },
};
process.on("message", (m: { id: number; op: string; arg?: unknown }) => {
  ops[m.op]!(m.arg).then(
    (value) => process.send?.({ id: m.id, value }),
    (err: unknown) => process.send?.({ id: m.id, error: String(err) }),
  );
});
process.on("disconnect", () => {
  void (fleet?.stop() ?? Promise.resolve()).finally(() => process.exit(0));
});
