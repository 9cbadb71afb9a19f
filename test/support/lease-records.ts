// Holding a relay's lease records (written after each lease's answer) on their way to Postgres,
// to see what happens when one arrives late.
import { vi } from "vitest";
import type { Stack } from "../harness.ts";

/**
 * Holds the lease records of `worker` (of every worker when not given) in `stack`'s relay, before
 * they reach Postgres, until the returned function lets them through and stops holding. Other
 * job marks go on as usual.
 */
export function holdLeaseRecords(stack: Stack, worker?: string): () => void {
  const marks = stack.relay.ctx.jobMarks;
  const submit = marks.submit.bind(marks);
  let open: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    open = resolve;
  });
  const held = vi.spyOn(marks, "submit").mockImplementation(async (mark) => {
    if (mark.kind === "leased" && (worker === undefined || mark.worker === worker)) await released;
    return submit(mark);
  });
  return () => {
    open();
    held.mockRestore();
  };
}
