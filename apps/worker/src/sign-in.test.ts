// Signing in when the relay says no: a rate limit or an unavailable relay says when to come back
// (Retry-After), which the worker waits out; a refusal for good (a tier too low for every declared
// job type, a clock that is off) stops the pool with the relay's message instead of retrying.
import { expect, it } from "vitest";
import { simBackend } from "./backends/sim.ts";
import { FakeRelay } from "./testing/fake-relay.ts";
import { poolsStoppedAfterEach, testOperator } from "./testing/pools.ts";
import { sleep } from "./timing.ts";
import type { WorkerEvent } from "./types.ts";

const start = poolsStoppedAfterEach();

/** A relay whose sign-ins all answer `status` with `code` (and `headers`). */
function refusingSignIns(status: number, code: string, headers: Record<string, string> = {}) {
  const relay = new FakeRelay(testOperator);
  const attempts: number[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    if (String(input).endsWith("/v1/workers/sessions")) {
      attempts.push(Date.now());
      return new Response(
        JSON.stringify({ error: { code, message: `refused: ${code}`, requestId: "r" } }),
        { status, headers: { "content-type": "application/json", ...headers } },
      );
    }
    return relay.fetch(input, init);
  };
  return { fetch, attempts };
}

it("waits out Retry-After before signing in again", async () => {
  const { fetch, attempts } = refusingSignIns(429, "RATE_LIMITED", { "retry-after": "5" });
  const events: WorkerEvent[] = [];
  await start({
    backend: simBackend(),
    fetch,
    onEvent: (e) => events.push(e),
  });
  await sleep(2000);
  // Told to come back in 5 s: one attempt so far, and the next announced no sooner.
  expect(attempts).toHaveLength(1);
  const retry = events.find((e) => e.type === "relay_error" && e.op === "sign_in");
  expect(retry).toMatchObject({ retryInMs: expect.any(Number) });
  expect((retry as { retryInMs: number }).retryInMs).toBeGreaterThanOrEqual(5000);
});

it("stops with the relay's message when the sign-in is refused for good", async () => {
  const { fetch, attempts } = refusingSignIns(422, "TIER_TOO_LOW");
  const events: WorkerEvent[] = [];
  await start({
    workers: 2,
    jobTypes: ["base"],
    backend: simBackend(),
    fetch,
    onEvent: (e) => events.push(e),
  });
  for (let i = 0; i < 200 && !events.some((e) => e.type === "stopped"); i++) await sleep(25);
  expect(events.some((e) => e.type === "stopped")).toBe(true);
  const fatal = events.filter((e) => e.type === "fatal");
  expect(fatal.length).toBeGreaterThanOrEqual(1);
  expect(fatal[0]).toMatchObject({
    op: "sign_in",
    message: expect.stringContaining("TIER_TOO_LOW"),
  });
  await sleep(500);
  expect(attempts.length).toBeLessThanOrEqual(2); // one per worker, none again
});

it("explains a sign-in refused for a clock that is off", async () => {
  const { fetch } = refusingSignIns(422, "ISSUED_IN_FUTURE");
  const events: WorkerEvent[] = [];
  await start({
    backend: simBackend(),
    fetch,
    onEvent: (e) => events.push(e),
  });
  for (let i = 0; i < 200 && !events.some((e) => e.type === "fatal"); i++) await sleep(25);
  expect(events.find((e) => e.type === "fatal")).toMatchObject({
    message: expect.stringMatching(/ISSUED_IN_FUTURE.*clock/),
  });
});
