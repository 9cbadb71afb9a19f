// Holding a relay's calls on their way, to see what happens when they arrive late: its lease
// records (written after each lease's answer) before they reach Postgres, or any method.
import { vi } from "vitest";
import type { Stack } from "../harness.ts";

/**
 * Holds the calls of `target[method]` for which `when` holds (all when not given): each waits
 * until the returned function lets them through and stops holding. Other calls go on as usual.
 */
export function holdCalls<T extends object, K extends keyof T>(
  target: T,
  method: K,
  when: (...args: T[K] extends (...a: infer A) => unknown ? A : never) => boolean = () => true,
): () => void {
  const original = (target[method] as (...a: unknown[]) => unknown).bind(target);
  let open: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    open = resolve;
  });
  const calls = target as unknown as Record<string, (...a: unknown[]) => unknown>;
  const held = vi.spyOn(calls, method as string).mockImplementation(async (...args) => {
    if ((when as (...a: unknown[]) => boolean)(...args)) await released;
    return original(...args);
  });
  return () => {
    open();
    held.mockRestore();
  };
}

/**
 * Holds the lease records of `worker` (of every worker when not given) in `stack`'s relay, before
 * they reach Postgres. Other job marks go on as usual.
 */
export function holdLeaseRecords(stack: Stack, worker?: string): () => void {
  return holdCalls(
    stack.relay.ctx.jobMarks,
    "submit",
    (mark) => mark.kind === "leased" && (worker === undefined || mark.worker === worker),
  );
}
