// Small helpers shared by the fault scenarios: free ports, polling, sleeping.
export { freePort } from "../../support/ports.ts";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns a truthy value; throws `what` (with the last error) after
 * `timeoutMs`. Deadlines are generous: nothing here may depend on the machine's speed.
 */
export async function pollUntil<T>(
  fn: () => Promise<T | null | undefined | false>,
  timeoutMs: number,
  stepMs: number,
  what: string,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) {
      throw new Error(`${what} within ${timeoutMs} ms${last ? ` (${String(last)})` : ""}`);
    }
    await sleep(stepMs);
  }
}

const started = Date.now();
/** With FAULTS_TRACE=1, prints a timestamped progress line on stderr. */
export function trace(what: string): void {
  if (process.env.FAULTS_TRACE === "1") {
    process.stderr.write(`  [${((Date.now() - started) / 1000).toFixed(1)} s] ${what}\n`);
  }
}
