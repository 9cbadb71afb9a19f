// Steps retried in the background until Redis answers them (the broker's and the lost pops'
// clean-ups).
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Runs `step` until it succeeds (it fails while Redis is not back): after 25 ms, then waiting
 * twice as long each time up to a second. Gives up at `giveUpAt` (unix ms), or after the attempt
 * made at once when `signal` aborts. Never rejects, and its timers keep no process alive.
 */
export async function retryUntilDone(
  step: () => Promise<unknown>,
  giveUpAt: number,
  signal?: AbortSignal,
): Promise<void> {
  for (let delayMs = 25; ; delayMs = Math.min(2 * delayMs, 1000)) {
    await sleep(delayMs, undefined, signal ? { signal, ref: false } : { ref: false }).catch(
      () => {},
    );
    try {
      await step();
      return;
    } catch {
      // Not yet.
    }
    if (signal?.aborted || Date.now() >= giveUpAt) return;
  }
}
