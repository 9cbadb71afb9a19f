// When to try again after a refusal: the relay's Retry-After paces the worker, with a floor so that
// a Retry-After of 0 is no hot loop, and a backoff grown while the relay was unreachable does not
// keep the worker away once the relay answers.
import { describe, expect, it } from "vitest";
import { Backoff, RETRY_AFTER_FLOOR_CAP_MS, RETRY_AFTER_MAX_MS, retryDelayMs } from "./timing.ts";

/** A backoff (200 ms doubling to 10 s, no jitter below the top) after `failures` failures. */
function grown(failures: number): Backoff {
  const b = new Backoff(200, 10_000, () => 1);
  for (let i = 0; i < failures; i++) b.next();
  return b;
}

describe("retryDelayMs", () => {
  it("is the ordinary backoff when the relay sent no Retry-After", () => {
    expect(retryDelayMs(undefined, grown(0))).toBe(200);
    expect(retryDelayMs(undefined, grown(20))).toBe(10_000);
  });

  it("takes a Retry-After of days at an hour, never past Node's longest timer", () => {
    for (const days of [1, 30, 365]) {
      const ms = retryDelayMs(days * 86_400_000, grown(0));
      expect(ms).toBeGreaterThanOrEqual(RETRY_AFTER_MAX_MS);
      expect(ms).toBeLessThanOrEqual(RETRY_AFTER_MAX_MS * 1.5);
      expect(ms).toBeLessThan(2 ** 31 - 1);
    }
  });

  it("follows the relay's Retry-After, spread over up to half as long again", () => {
    for (let i = 0; i < 50; i++) {
      const ms = retryDelayMs(2000, grown(0));
      expect(ms).toBeGreaterThanOrEqual(2000);
      expect(ms).toBeLessThanOrEqual(3000);
    }
  });

  it("after the relay was unreachable long enough to grow the backoff, still follows it", () => {
    // A relay restarting: connections refused for a while (the backoff reaches 10 s), then its
    // first answer is a 503 asking to come back in a second.
    for (let i = 0; i < 50; i++) expect(retryDelayMs(1000, grown(20))).toBeLessThanOrEqual(1500);
  });

  it("never retries at once when Retry-After is 0, however often", () => {
    const b = new Backoff(200, 10_000, () => 0);
    const waits = Array.from({ length: 10 }, () => retryDelayMs(0, b));
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(100);
    expect(waits.at(-1)).toBe(RETRY_AFTER_FLOOR_CAP_MS);
  });
});
